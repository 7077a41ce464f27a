#pragma once
// aio::return_exceptions: gather's return_exceptions=True. As the first argument of
// aio::gather, every slot of the result holds an aio::outcome<T> — the child's value
// or its exception — and the gather waits for all its children.

namespace aio {

struct return_exceptions_t {
    explicit constexpr return_exceptions_t() = default;
};
inline constexpr return_exceptions_t return_exceptions{};

}  // namespace aio
