// Ctrl-C unwinds every task: aio::run cancels the main task on SIGINT, the
// cancellation reaches every task it waits for, each one runs its cleanup (awaits
// included), and run() then throws aio::keyboard_interrupt. To run unattended, the
// program sends itself SIGINT after 0.2 s; press Ctrl-C sooner to do it yourself.
//
// The asyncio original (it prints the same lines):
//
//   async def worker(name, period):
//       print(f"{name}: started")
//       try:
//           while True:
//               await asyncio.sleep(period)
//       except asyncio.CancelledError:
//           print(f"{name}: cancelled, closing its connection")
//           await asyncio.sleep(0.01)
//           print(f"{name}: closed")
//           raise
//
//   async def main():
//       workers = [asyncio.create_task(worker(f"worker-{i}", 0.05)) for i in range(1, 4)]
//       await asyncio.sleep(0)
//       print("main: running; press Ctrl-C to stop (this demo sends itself SIGINT after 0.2 s)")
//       asyncio.get_running_loop().call_later(0.2, signal.raise_signal, signal.SIGINT)
//       try:
//           await asyncio.gather(*workers)
//       except asyncio.CancelledError:
//           print("main: cancelled, its workers have unwound")
//           raise
//
//   try:
//       asyncio.run(main())
//   except KeyboardInterrupt:
//       print("interrupted: every task has unwound")

#include <aio/aio.hpp>

#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

using namespace std::chrono_literals;

aio::task<> worker(std::string name, std::chrono::milliseconds period) {
    std::printf("%s: started\n", name.c_str());
    bool cancelled = false;
    try {
        for (;;) co_await aio::sleep(period);
    } catch (const aio::cancelled_error&) {
        cancelled = true;
    }
    if (cancelled) {  // C++ cannot co_await inside a catch block: clean up after it
        std::printf("%s: cancelled, closing its connection\n", name.c_str());
        co_await aio::sleep(10ms);
        std::printf("%s: closed\n", name.c_str());
        throw aio::cancelled_error();
    }
}

aio::task<> main_task() {
    std::vector<aio::task_handle<>> workers;
    for (int i = 1; i <= 3; ++i) workers.push_back(aio::create_task(worker("worker-" + std::to_string(i), 50ms)));
    co_await aio::sleep(0s);
    std::printf("main: running; press Ctrl-C to stop (this demo sends itself SIGINT after 0.2 s)\n");
    (void)aio::get_running_loop().call_later(200ms, [] { std::raise(SIGINT); });
    try {
        co_await aio::gather(std::move(workers));
    } catch (const aio::cancelled_error&) {
        std::printf("main: cancelled, its workers have unwound\n");
        throw;
    }
}

int main() {
    try {
        aio::run(main_task());
    } catch (const aio::keyboard_interrupt&) {
        std::printf("interrupted: every task has unwound\n");
    }
}
