#pragma once
// aio::outcome<T>: a value or the exception that replaced it — one slot of
// aio::gather(aio::return_exceptions, ...).

#include <exception>
#include <type_traits>
#include <utility>
#include <variant>

#include "errors.hpp"

namespace aio {

template <class T>
class outcome {
public:
    // outcome<void> holds std::monostate as its value.
    using value_type = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

    explicit outcome(value_type value) : v_(std::in_place_index<0>, std::move(value)) {}
    explicit outcome(std::exception_ptr error) : v_(std::in_place_index<1>, std::move(error)) {
        if (!std::get<1>(v_)) throw invalid_state_error("aio::outcome needs a non-null exception");
    }

    bool has_value() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    // The value; rethrows the stored exception when there is none.
    value_type& value() & { check(); return std::get<0>(v_); }
    const value_type& value() const& { check(); return std::get<0>(v_); }
    value_type&& value() && { check(); return std::get<0>(std::move(v_)); }

    // The stored exception, or null when there is a value.
    std::exception_ptr error() const noexcept { return has_value() ? nullptr : std::get<1>(v_); }

private:
    void check() const {
        if (!has_value()) std::rethrow_exception(std::get<1>(v_));
    }

    std::variant<value_type, std::exception_ptr> v_;
};

}  // namespace aio
