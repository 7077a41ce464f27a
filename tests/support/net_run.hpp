#pragma once
// How the network tests run: each body on a fresh loop, bounded in time, and (with
// run_checked) leaving no descriptor open; and what the loop's exception handler was
// given meanwhile.

#include <aio/event_loop.hpp>
#include <aio/exception_context.hpp>
#include <aio/run.hpp>
#include <aio/task.hpp>
#include <aio/wait_for.hpp>

#include <chrono>
#include <cstddef>
#include <exception>
#include <string>
#include <vector>

#include "catch.hpp"
#include "descriptors.hpp"

namespace aio_test {

template <class F>
aio::task<> bounded(F& body, std::chrono::milliseconds limit) {
    co_await aio::wait_for(body(), limit);
}

// Runs `body()` (a named lambda: it outlives the task) on a fresh loop for at most
// `limit`.
template <class F>
void run_bounded(F& body, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    aio::run(bounded(body, limit));
}

// The same, and checks that it left no descriptor open.
template <class F>
void run_checked(F& body, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const std::size_t before = open_descriptors();
    aio::run(bounded(body, limit));
    REQUIRE(open_descriptors() == before);
}

// What the running loop's exception handler is given (CPython's `messages`): each
// report's message and exception.
struct reports {
    std::vector<std::string> messages;
    std::vector<std::exception_ptr> errors;
    void listen() {
        aio::get_running_loop().set_exception_handler([this](aio::event_loop&, const aio::exception_context& c) {
            messages.push_back(c.message);
            errors.push_back(c.exception);
        });
    }
};

}  // namespace aio_test
