#pragma once
// The errors of aio's queues (asyncio.QueueEmpty, QueueFull, QueueShutDown).

#include <stdexcept>

namespace aio {

// get_nowait() on an empty queue (asyncio.QueueEmpty).
class queue_empty : public std::runtime_error {
public:
    queue_empty() : std::runtime_error("the queue is empty") {}
};

// put_nowait() on a full queue (asyncio.QueueFull).
class queue_full : public std::runtime_error {
public:
    queue_full() : std::runtime_error("the queue is full") {}
};

// A put on a queue that was shut down, or a get on one that was shut down and is
// empty (asyncio.QueueShutDown, Python 3.13).
class queue_shutdown : public std::runtime_error {
public:
    queue_shutdown() : std::runtime_error("the queue was shut down") {}
};

}  // namespace aio
