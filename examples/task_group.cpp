// Three downloads in a task group; one fails, which cancels the other two (they clean
// up), and the group throws an aio::exception_group holding the failure. The asyncio
// original:
//
//   class DownloadError(Exception): pass
//
//   async def download(name, seconds, fail=False):
//       print(f"{name}: started")
//       try:
//           await asyncio.sleep(seconds)
//           if fail:
//               raise DownloadError(f"{name}: connection reset")
//           print(f"{name}: finished")
//           return name
//       except asyncio.CancelledError:
//           print(f"{name}: cancelled, removing the partial file")
//           raise
//
//   async def main():
//       start = time.perf_counter()
//       try:
//           async with asyncio.TaskGroup() as g:
//               g.create_task(download("a.zip", 0.3))
//               g.create_task(download("b.zip", 0.1, fail=True))
//               g.create_task(download("c.zip", 0.2))
//               print("main: waiting for the downloads")
//           print("main: all downloads finished")
//       except* DownloadError as eg:
//           print(f"main: {eg}")
//           for e in eg.exceptions:
//               print(f"main: failed: {e}")
//       print(f"main: done in {time.perf_counter() - start:.1f} s")
//
// asyncio cancels the group's remaining tasks in the order of its set of tasks, which
// varies from run to run; aio cancels them in creation order (a.zip, then c.zip).
#include <aio/aio.hpp>
#include <aio/exception_group.hpp>
#include <aio/task_group.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;

struct download_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

aio::task<std::string> download(std::string name, std::chrono::milliseconds time, bool fail = false) {
    std::printf("%s: started\n", name.c_str());
    try {
        co_await aio::sleep(time);
    } catch (const aio::cancelled_error&) {
        std::printf("%s: cancelled, removing the partial file\n", name.c_str());
        throw;
    }
    if (fail) throw download_error(name + ": connection reset");
    std::printf("%s: finished\n", name.c_str());
    co_return name;
}

aio::task<> amain() {
    const auto start = std::chrono::steady_clock::now();
    try {
        co_await aio::task_group::run([](aio::task_group& g) -> aio::task<> {
            g.create_task(download("a.zip", 300ms));
            g.create_task(download("b.zip", 100ms, true));
            g.create_task(download("c.zip", 200ms));
            std::printf("main: waiting for the downloads\n");
            co_return;
        });
        std::printf("main: all downloads finished\n");
    } catch (const aio::exception_group& eg) {
        std::printf("main: %s\n", eg.what());
        for (const std::exception_ptr& e : eg.exceptions()) {
            try {
                std::rethrow_exception(e);
            } catch (const download_error& error) {
                std::printf("main: failed: %s\n", error.what());
            }
        }
    }
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    std::printf("main: done in %.1f s\n", elapsed.count());
}

int main() { aio::run(amain()); }
