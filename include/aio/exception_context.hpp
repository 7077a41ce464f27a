#pragma once
// What the event loop hands to its exception handler.

#include <exception>
#include <string>

namespace aio {

// asyncio's exception-handler context dict, as a struct.
struct exception_context {
    std::string message;           // what happened, e.g. "Task exception was never retrieved"
    std::exception_ptr exception;  // the error, if there is one
    std::string task_name;         // the task concerned, empty if none
};

}  // namespace aio
