#pragma once
// asyncio's error types as C++ exceptions: the ordinary errors derive from
// std::exception; a cancellation and Ctrl-C derive from aio::base_exception, which does
// not, so ordinary error handling cannot swallow them (Python's BaseException).

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

namespace aio {

// What is not an error but ends a task all the same (Python's BaseException): a
// cancellation, Ctrl-C. It has what() but is not a std::exception, so
// `catch (const std::exception&)` lets it through; `catch (...)` still sees it, as a
// bare `except:` does. Copying shares the message (copies never throw).
class base_exception {
public:
    explicit base_exception(const std::string& message)
        : message_(std::make_shared_for_overwrite<char[]>(message.size() + 1)) {
        std::memcpy(message_.get(), message.c_str(), message.size() + 1);
    }
    virtual ~base_exception() = default;
    virtual const char* what() const noexcept { return message_.get(); }

private:
    std::shared_ptr<char[]> message_;  // one allocation, as std::runtime_error's
};

// Thrown at the co_await where a cancelled task is suspended (asyncio.CancelledError).
class cancelled_error : public base_exception {
public:
    cancelled_error() : base_exception("the task was cancelled") {}
    explicit cancelled_error(const std::string& message)
        : base_exception(message.empty() ? "the task was cancelled" : message) {}
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
// (asyncio's KeyboardInterrupt, a BaseException).
class keyboard_interrupt : public base_exception {
public:
    keyboard_interrupt() : base_exception("interrupted (SIGINT)") {}
};

}  // namespace aio
