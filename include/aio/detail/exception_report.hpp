#pragma once
// The default exception handler's output: one line on stderr per error that nobody
// retrieved (asyncio's "Task exception was never retrieved").

#include <cstdio>
#include <exception>
#include <string>

#include "../errors.hpp"
#include "../exception_context.hpp"

namespace aio::detail {

// One line, written at once so that lines from threads do not interleave.
inline void print_exception_context(const exception_context& context) noexcept {
    try {
        std::string line = "aio: " + context.message;
        if (!context.task_name.empty()) line += " (task '" + context.task_name + "')";
        if (context.exception) {
            try {
                std::rethrow_exception(context.exception);
            } catch (const std::exception& e) {
                line += ": ";
                line += e.what();
            } catch (const base_exception& e) {
                line += ": ";
                line += e.what();
            } catch (...) {
                line += ": unknown exception";
            }
        }
        line += '\n';
        std::fputs(line.c_str(), stderr);
    } catch (...) {
        std::fputs("aio: an error occurred and could not be described\n", stderr);
    }
}

}  // namespace aio::detail
