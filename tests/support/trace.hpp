#pragma once
// An ordered log of events, for checking the scheduling order against asyncio's.

#include <string>
#include <vector>

namespace aio_test {

struct trace {
    std::vector<std::string> events;
    void operator()(std::string event) { events.push_back(std::move(event)); }
};

}  // namespace aio_test
