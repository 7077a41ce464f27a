#pragma once
// The four error types of asyncio, as C++ exceptions.

#include <exception>
#include <stdexcept>
#include <string>

namespace aio {

// Thrown at the co_await where a cancelled task is suspended (asyncio.CancelledError).
// It derives from std::runtime_error, so `catch (const std::exception&)` also catches a
// cancellation: rethrow it, or the task carries on as if it had not been cancelled.
class cancelled_error : public std::runtime_error {
public:
    cancelled_error() : std::runtime_error("the task was cancelled") {}
    explicit cancelled_error(const std::string& message)
        : std::runtime_error(message.empty() ? "the task was cancelled" : message) {}
};

// A time limit ran out (asyncio.TimeoutError).
class timeout_error : public std::runtime_error {
public:
    timeout_error() : std::runtime_error("the operation timed out") {}
    explicit timeout_error(const std::string& message) : std::runtime_error(message) {}
};

// An operation is not allowed in the object's current state, e.g. reading the result
// of a task that has not finished (asyncio.InvalidStateError).
class invalid_state_error : public std::logic_error {
public:
    explicit invalid_state_error(const std::string& message) : std::logic_error(message) {}
};

// Misuse of the event loop, e.g. aio::run() inside a running loop (RuntimeError).
class runtime_error : public std::runtime_error {
public:
    explicit runtime_error(const std::string& message) : std::runtime_error(message) {}
};

// A barrier was aborted or reset while a task waited on it, or is broken
// (asyncio.BrokenBarrierError, a RuntimeError).
class broken_barrier_error : public aio::runtime_error {
public:
    explicit broken_barrier_error(const std::string& message) : aio::runtime_error(message) {}
};

// aio::run was interrupted by Ctrl-C (SIGINT) and its main task ended cancelled
// (asyncio's KeyboardInterrupt). Like Python's, it is not one of the ordinary errors:
// it derives from std::exception only, so `catch (const std::runtime_error&)` lets it
// through to the caller of aio::run.
class keyboard_interrupt : public std::exception {
public:
    const char* what() const noexcept override { return "interrupted (SIGINT)"; }
};

}  // namespace aio
