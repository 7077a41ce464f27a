#pragma once
// aio: Python's asyncio as a header-only C++20 library. The umbrella header.

#include "create_task.hpp"
#include "errors.hpp"
#include "event_loop.hpp"
#include "exception_context.hpp"
#include "gather.hpp"
#include "handle.hpp"
#include "outcome.hpp"
#include "run.hpp"
#include "sleep.hpp"
#include "task.hpp"
#include "task_handle.hpp"
#include "timeout.hpp"
#include "wait_for.hpp"
