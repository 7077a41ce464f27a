// aio::outcome<T>: one slot of aio::gather(aio::return_exceptions, ...) — a value or
// the exception that replaced it.

#include <aio/errors.hpp>
#include <aio/outcome.hpp>

#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "support/catch.hpp"
#include "support/counted.hpp"

using aio_test::counted;

namespace {
template <class E>
std::exception_ptr error_of(E e) {
    return std::make_exception_ptr(std::move(e));
}
}  // namespace

TEST_CASE("an outcome holding a value has it and no error") {
    aio::outcome<int> o(42);
    REQUIRE(o.has_value());
    REQUIRE(static_cast<bool>(o));
    REQUIRE(o.value() == 42);
    REQUIRE(o.error() == nullptr);
}

TEST_CASE("an outcome's value can be changed in place and read through a const reference") {
    aio::outcome<std::string> o(std::string("a"));
    o.value() += "b";
    const aio::outcome<std::string>& c = o;
    REQUIRE(c.value() == "ab");
    static_assert(std::is_same_v<decltype(c.value()), const std::string&>);
    static_assert(std::is_same_v<decltype(o.value()), std::string&>);
    static_assert(std::is_same_v<decltype(std::move(o).value()), std::string&&>);
}

TEST_CASE("an outcome holding an exception has no value and value() rethrows it") {
    aio::outcome<int> o(error_of(std::out_of_range("gone")));
    REQUIRE_FALSE(o.has_value());
    REQUIRE_FALSE(static_cast<bool>(o));
    REQUIRE(o.error() != nullptr);
    REQUIRE_THROWS_AS(o.value(), std::out_of_range);
    REQUIRE_THROWS_WITH(o.value(), "gone");
    REQUIRE_THROWS_AS(std::rethrow_exception(o.error()), std::out_of_range);
    const aio::outcome<int>& c = o;
    REQUIRE_THROWS_AS(c.value(), std::out_of_range);
    REQUIRE_THROWS_AS(std::move(o).value(), std::out_of_range);
}

TEST_CASE("an outcome rethrows the very exception object it holds") {
    std::exception_ptr e = error_of(aio::cancelled_error());
    aio::outcome<int> o(e);
    REQUIRE(o.error() == e);
    const aio::cancelled_error* first = nullptr;
    const aio::cancelled_error* second = nullptr;
    try {
        o.value();
    } catch (const aio::cancelled_error& x) {
        first = &x;
    }
    try {
        o.value();
    } catch (const aio::cancelled_error& x) {
        second = &x;
    }
    REQUIRE(first != nullptr);
    REQUIRE(first == second);
}

TEST_CASE("an outcome holds an exception that does not derive from std::exception") {
    aio::outcome<int> o(std::make_exception_ptr(17));
    REQUIRE_FALSE(o.has_value());
    REQUIRE_THROWS_AS(o.value(), int);
}

TEST_CASE("an outcome refuses a null exception") {
    REQUIRE_THROWS_AS(aio::outcome<int>(std::exception_ptr{}), aio::invalid_state_error);
    REQUIRE_THROWS_AS(aio::outcome<void>(std::exception_ptr{}), aio::invalid_state_error);
}

TEST_CASE("outcome<void> holds std::monostate as its value") {
    static_assert(std::is_same_v<aio::outcome<void>::value_type, std::monostate>);
    aio::outcome<void> ok(std::monostate{});
    REQUIRE(ok.has_value());
    REQUIRE(ok.error() == nullptr);
    REQUIRE(ok.value() == std::monostate{});

    aio::outcome<void> failed(error_of(aio::timeout_error()));
    REQUIRE_FALSE(failed.has_value());
    REQUIRE_THROWS_AS(failed.value(), aio::timeout_error);
}

TEST_CASE("an outcome moves a move-only value out") {
    aio::outcome<std::unique_ptr<int>> o(std::make_unique<int>(5));
    std::unique_ptr<int> p = std::move(o).value();
    REQUIRE(p);
    REQUIRE(*p == 5);
}

TEST_CASE("an outcome is copyable and movable when its value is") {
    aio::outcome<std::string> a(std::string("x"));
    aio::outcome<std::string> b = a;
    aio::outcome<std::string> c = std::move(a);
    REQUIRE(b.value() == "x");
    REQUIRE(c.value() == "x");
    aio::outcome<std::string> d(error_of(std::runtime_error("e")));
    b = d;
    REQUIRE_THROWS_WITH(b.value(), "e");
}

TEST_CASE("an outcome destroys its value exactly once") {
    counted::reset();
    {
        aio::outcome<counted> o(counted(3));
        aio::outcome<counted> copy = o;
        aio::outcome<counted> moved = std::move(o);
        REQUIRE(copy.value().value == 3);
        REQUIRE(moved.value().value == 3);
        moved = aio::outcome<counted>(error_of(std::runtime_error("replaced")));
        REQUIRE_FALSE(moved.has_value());
    }
    REQUIRE(counted::alive() == 0);
}
