// aio/os_error.hpp: Python's OSError and its ConnectionError family as std::system_errors,
// and the mapping from errno to them that every I/O call of aio goes through.

#include <aio/os_error.hpp>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>

#include "support/catch.hpp"

static_assert(std::is_base_of_v<std::system_error, aio::os_error>);
static_assert(std::is_base_of_v<std::runtime_error, aio::os_error>);  // std::system_error's own base
static_assert(std::is_base_of_v<aio::os_error, aio::connection_error>);
static_assert(std::is_base_of_v<aio::connection_error, aio::connection_refused_error>);
static_assert(std::is_base_of_v<aio::connection_error, aio::connection_reset_error>);
static_assert(std::is_base_of_v<aio::connection_error, aio::connection_aborted_error>);
static_assert(std::is_base_of_v<aio::connection_error, aio::broken_pipe_error>);
// Siblings, as in Python: a refused connection is not a reset one.
static_assert(!std::is_base_of_v<aio::connection_refused_error, aio::connection_reset_error>);
static_assert(!std::is_base_of_v<aio::connection_reset_error, aio::connection_aborted_error>);
static_assert(!std::is_base_of_v<aio::connection_aborted_error, aio::broken_pipe_error>);
static_assert(!std::is_base_of_v<aio::broken_pipe_error, aio::connection_refused_error>);
// Not an aio::runtime_error (the loop's misuse errors) and not a cancellation.
static_assert(!std::is_base_of_v<aio::runtime_error, aio::os_error>);
static_assert(!std::is_base_of_v<aio::base_exception, aio::os_error>);
static_assert(std::is_nothrow_copy_constructible_v<aio::os_error>);

namespace {

// True when what throw_os_error(error_number, ...) throws is caught as an E.
template <class E>
bool thrown_as(int error_number) {
    try {
        aio::detail::throw_os_error(error_number, "aio: test call");
    } catch (const E&) {
        return true;
    } catch (...) {
        return false;
    }
}

// The most derived of the family that throw_os_error(error_number) threw.
std::string class_of(int error_number) {
    try {
        aio::detail::throw_os_error(error_number, "aio: test call");
    } catch (const aio::connection_refused_error&) {
        return "connection_refused_error";
    } catch (const aio::connection_reset_error&) {
        return "connection_reset_error";
    } catch (const aio::connection_aborted_error&) {
        return "connection_aborted_error";
    } catch (const aio::broken_pipe_error&) {
        return "broken_pipe_error";
    } catch (const aio::connection_error&) {
        return "connection_error";
    } catch (const aio::os_error&) {
        return "os_error";
    } catch (...) {
        return "something else";
    }
}

}  // namespace

TEST_CASE("throw_os_error maps the connection errnos to their classes, as Python's OSError constructor does") {
    REQUIRE(class_of(ECONNREFUSED) == "connection_refused_error");
    REQUIRE(class_of(ECONNRESET) == "connection_reset_error");
    REQUIRE(class_of(ECONNABORTED) == "connection_aborted_error");
    REQUIRE(class_of(EPIPE) == "broken_pipe_error");
    REQUIRE(class_of(ESHUTDOWN) == "broken_pipe_error");
}

TEST_CASE("throw_os_error throws a plain os_error for every other errno") {
    for (int e : {EBADF, EPERM, EAGAIN, EINVAL, ENOENT, EACCES, EADDRINUSE, ETIMEDOUT, EHOSTUNREACH, ENOTCONN, EMFILE})
        REQUIRE(class_of(e) == "os_error");
    REQUIRE(class_of(0) == "os_error");
}

TEST_CASE("every error throw_os_error throws is caught as an os_error and as a std::system_error") {
    for (int e : {ECONNREFUSED, ECONNRESET, ECONNABORTED, EPIPE, ESHUTDOWN, EBADF}) {
        REQUIRE(thrown_as<aio::os_error>(e));
        REQUIRE(thrown_as<std::system_error>(e));
        REQUIRE(thrown_as<std::exception>(e));
    }
    for (int e : {ECONNREFUSED, ECONNRESET, ECONNABORTED, EPIPE, ESHUTDOWN}) REQUIRE(thrown_as<aio::connection_error>(e));
    REQUIRE_FALSE(thrown_as<aio::connection_error>(EBADF));
    REQUIRE_FALSE(thrown_as<aio::connection_error>(ETIMEDOUT));  // Python's TimeoutError is no ConnectionError
}

TEST_CASE("an os_error's code is errno in the generic category and compares equal to std::errc") {
    const aio::os_error e(ECONNREFUSED, "aio: connect to 127.0.0.1:9");
    REQUIRE(e.code().value() == ECONNREFUSED);
    REQUIRE(e.error_number() == ECONNREFUSED);
    REQUIRE(&e.code().category() == &std::generic_category());
    REQUIRE(e.code() == std::errc::connection_refused);
    REQUIRE(e.code() != std::errc::connection_reset);
    REQUIRE(e.code() == std::make_error_code(std::errc::connection_refused));

    try {
        aio::detail::throw_os_error(EPIPE, "aio: send");
    } catch (const aio::os_error& caught) {
        REQUIRE(caught.error_number() == EPIPE);
        REQUIRE(caught.code() == std::errc::broken_pipe);
        REQUIRE(&caught.code().category() == &std::generic_category());
    }
    try {
        aio::detail::throw_os_error(ESHUTDOWN, "aio: send");
    } catch (const aio::broken_pipe_error& caught) {
        REQUIRE(caught.error_number() == ESHUTDOWN);  // the class is shared; the number is kept
    }
}

TEST_CASE("an os_error's what() names the call and gives the system's text for errno") {
    const aio::os_error e(ECONNREFUSED, "aio: connect to 127.0.0.1:9");
    const std::string what = e.what();
    REQUIRE(what.find("aio: connect to 127.0.0.1:9") == 0);
    REQUIRE(what.find(std::strerror(ECONNREFUSED)) != std::string::npos);
    REQUIRE(what == std::string("aio: connect to 127.0.0.1:9: ") + std::strerror(ECONNREFUSED));

    try {
        aio::detail::throw_os_error(ECONNRESET, "aio: recv");
    } catch (const std::exception& caught) {
        REQUIRE(std::string(caught.what()) == std::string("aio: recv: ") + std::strerror(ECONNRESET));
    }
}

TEST_CASE("throw_errno throws for the errno the failed call left") {
    errno = ECONNABORTED;
    try {
        aio::detail::throw_errno("aio: accept()");
    } catch (const aio::connection_aborted_error& e) {
        REQUIRE(e.error_number() == ECONNABORTED);
        REQUIRE(std::string(e.what()).find("aio: accept()") == 0);
        REQUIRE(std::string(e.what()).find(std::strerror(ECONNABORTED)) != std::string::npos);
        return;
    }
    FAIL("throw_errno did not throw a connection_aborted_error");
}
