// Subprocesses (include/aio/subprocess.hpp, detail/spawn.hpp, detail/child_watch.hpp):
// CPython's Lib/test/test_asyncio/test_subprocess.py (3.13) ported — its Python children
// replaced by sh, cat, sleep and head — then what aio promises beyond it: a hundred
// children at once, 64 MiB through a slow reader with the child held back, the errors
// of a bad request, env, cwd and a new session honoured, nothing of the parent leaking
// into the child, and a child never left a zombie (a dropped handle, a closing loop).
//
// Every test runs on a fresh loop, bounded in time, counts the process's descriptors
// before and after, and checks that no child is left unreaped. No co_await appears
// inside a REQUIRE (each is awaited into a local first).
#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/event.hpp>
#include <aio/event_loop.hpp>
#include <aio/gather.hpp>
#include <aio/net/stream_reader.hpp>
#include <aio/net/stream_writer.hpp>
#include <aio/os_error.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/subprocess.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>
#include <aio/wait_for.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/catch.hpp"
#include "support/descriptors.hpp"
#include "support/net_run.hpp"

using namespace std::chrono_literals;
namespace sp = aio::subprocess;

namespace {

// No child of this process is left, running or a zombie.
bool no_child_left() {
    siginfo_t info{};
    return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD;
}

// Whether `pid` is still a child of ours (running, or exited and not reaped).
bool still_a_child(pid_t pid) {
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}

// A test body on a fresh loop, bounded, leaving no descriptor and no child behind.
template <class F>
void run_subprocess(F& body, std::chrono::milliseconds limit = 20s) {
    aio_test::run_checked(body, limit);
    REQUIRE(no_child_left());
}

const std::vector<std::string> program_blocked{"3600"};  // sleep 3600

aio::process_options piped_in_out() { return {.std_in = sp::pipe, .std_out = sp::pipe}; }

// What /proc/<pid>/io says the process has written, if it can be read.
std::optional<std::uint64_t> bytes_written(pid_t pid) {
    std::ifstream io("/proc/" + std::to_string(pid) + "/io");
    std::string key;
    std::uint64_t value = 0;
    while (io >> key >> value)
        if (key == "wchar:") return value;
    return std::nullopt;
}

// The session of the process whose /proc/<pid>/stat this is (the field after pgrp).
long session_of(const std::string& stat) {
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));
    std::string state;
    long ppid = 0, pgrp = 0, session = 0;
    rest >> state >> ppid >> pgrp >> session;
    return session;
}

}  // namespace

// --- CPython's test_subprocess.py

TEST_CASE("test_stdin_stdout: what is written to the child's stdin comes back on its stdout") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_exec("cat", {}, piped_in_out());
        proc.std_in().write("some data");
        co_await proc.std_in().drain();
        proc.std_in().close();
        const std::string data = co_await proc.std_out().read();
        const int exitcode = co_await proc.wait();
        REQUIRE(exitcode == 0);
        REQUIRE(data == "some data");
    };
    run_subprocess(body);
}

TEST_CASE("test_communicate: communicate feeds stdin and returns stdout") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_exec("cat", {}, piped_in_out());
        auto [out, err] = co_await proc.communicate("some data");
        REQUIRE(proc.returncode() == 0);
        REQUIRE(out == "some data");
        REQUIRE(err.empty());
    };
    run_subprocess(body);
}

TEST_CASE("test_communicate_none_input: communicate without input closes stdin and reads nothing") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_exec("cat", {}, piped_in_out());
        auto [out, err] = co_await proc.communicate();
        REQUIRE(proc.returncode() == 0);
        REQUIRE(out.empty());
    };
    run_subprocess(body);
}

TEST_CASE("test_shell: a shell command's exit status is the return code") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_shell("exit 7");
        const int exitcode = co_await proc.wait();
        REQUIRE(exitcode == 7);
    };
    run_subprocess(body);
}

TEST_CASE("test_start_new_session: a child in a new session runs and exits") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_shell("exit 8", {.start_new_session = true});
        const int exitcode = co_await proc.wait();
        REQUIRE(exitcode == 8);
    };
    run_subprocess(body);
}

TEST_CASE("test_kill: a killed child's return code is -SIGKILL") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_exec("sleep", program_blocked);
        proc.kill();
        const int returncode = co_await proc.wait();
        REQUIRE(returncode == -SIGKILL);
    };
    run_subprocess(body);
}

TEST_CASE("test_kill_issue43884: killing a shell with a pipe ends its wait") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_shell("sleep 1; sleep 1", {.std_out = sp::pipe});
        co_await aio::sleep(50ms);
        proc.kill();
        const int returncode = co_await proc.wait();
        REQUIRE(returncode == -SIGKILL);
    };
    run_subprocess(body);
}

TEST_CASE("test_terminate: a terminated child's return code is -SIGTERM") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_exec("sleep", program_blocked);
        proc.terminate();
        const int returncode = co_await proc.wait();
        REQUIRE(returncode == -SIGTERM);
    };
    run_subprocess(body);
}

TEST_CASE("test_send_signal: a signal sent once the child is ready ends it with that signal") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_shell("echo sleeping; exec sleep 3600", {.std_out = sp::pipe});
        const std::string line = co_await proc.std_out().readline();
        REQUIRE(line == "sleeping\n");
        proc.send_signal(SIGHUP);
        const int returncode = co_await proc.wait();
        REQUIRE(returncode == -SIGHUP);
    };
    run_subprocess(body);
}

TEST_CASE("test_stdin_broken_pipe: drain raises when the child has closed its stdin") {
    auto body = []() -> aio::task<> {
        // The child reads a little, then ends: the rest of the write has nowhere to go.
        aio::process proc = co_await aio::create_subprocess_exec("head", "-c", "1", aio::process_options{.std_in = sp::pipe, .std_out = sp::devnull});
        const std::string large(std::size_t{4} << 20, 'x');
        proc.std_in().write(large);
        bool raised = false;
        try {
            co_await proc.std_in().drain();
        } catch (const aio::broken_pipe_error&) {
            raised = true;
        } catch (const aio::connection_reset_error&) {
            raised = true;
        }
        REQUIRE(raised);
        const int returncode = co_await proc.wait();
        REQUIRE(returncode == 0);
    };
    run_subprocess(body);
}

TEST_CASE("test_communicate_ignore_broken_pipe: communicate ignores a child that reads none of its input") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_exec("true", {}, {.std_in = sp::pipe});
        co_await proc.communicate(std::string(std::size_t{4} << 20, 'x'));
        const int returncode = co_await proc.wait();
        REQUIRE(returncode == 0);
    };
    run_subprocess(body);
}

TEST_CASE("test_pause_reading: a full reader stops reading the pipe, and the child blocks until it is read") {
    auto body = []() -> aio::task<> {
        constexpr std::size_t limit = 1024;
        constexpr std::size_t size = std::size_t{1} << 20;  // far more than the pipe and twice the limit hold
        aio::process proc = co_await aio::create_subprocess_exec(
            "head", "-c", std::to_string(size), "/dev/zero", aio::process_options{.std_in = sp::pipe, .std_out = sp::pipe, .limit = limit});
        // Nobody reads: the transport pauses above twice the limit, the pipe fills, and
        // the child cannot finish.
        co_await aio::sleep(200ms);
        REQUIRE_FALSE(proc.returncode().has_value());
        REQUIRE(still_a_child(proc.pid()));
        auto [out, err] = co_await proc.communicate();
        REQUIRE(out.size() == size);
        REQUIRE(out == std::string(size, '\0'));
        REQUIRE(proc.returncode() == 0);
    };
    run_subprocess(body);
}

TEST_CASE("test_cancel_process_wait: a cancelled wait leaves the child to be waited for again") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_exec("sleep", program_blocked);
        aio::task_handle<int> waiting = aio::create_task(proc.wait());
        aio::get_running_loop().call_soon([waiting]() mutable { waiting.cancel(); });
        bool cancelled = false;
        try {
            (void)co_await waiting;
        } catch (const aio::cancelled_error&) {
            cancelled = true;
        }
        REQUIRE(cancelled);
        REQUIRE_FALSE(waiting.cancel());
        proc.kill();
        const int returncode = co_await proc.wait();
        REQUIRE(returncode == -SIGKILL);
    };
    run_subprocess(body);
}

TEST_CASE("test_close_kill_running: dropping the process of a running child kills it, and it is reaped") {
    auto body = []() -> aio::task<> {
        pid_t pid = -1;
        {
            aio::process proc = co_await aio::create_subprocess_exec("sleep", program_blocked);
            pid = proc.pid();
            REQUIRE_FALSE(proc.returncode().has_value());
        }
        // Reaped in the background while the loop runs.
        for (int i = 0; i < 500 && still_a_child(pid); ++i) co_await aio::sleep(10ms);
        REQUIRE_FALSE(still_a_child(pid));
    };
    run_subprocess(body);
}

TEST_CASE("test_close_dont_kill_finished: dropping the process of a finished child changes nothing") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_shell("exit 3");
        const int returncode = co_await proc.wait();
        REQUIRE(returncode == 3);
        aio::process gone = std::move(proc);
    };
    run_subprocess(body);
}

TEST_CASE("test_read_stdout_after_process_exit: output is still read after the child has exited") {
    auto body = []() -> aio::task<> {
        // 64 × 4096 bytes, then exit 1.
        aio::process proc = co_await aio::create_subprocess_shell("head -c 262144 /dev/zero; exit 1", {.std_out = sp::pipe});
        std::size_t total = 0;
        for (int i = 0; i < 1000; ++i) {
            const std::string data = co_await proc.std_out().read(65536);
            if (data.empty()) break;
            total += data.size();
            co_await aio::sleep(10ms);
        }
        REQUIRE(total == 262144);
        const int returncode = co_await proc.wait();
        REQUIRE(returncode == 1);
    };
    run_subprocess(body);
}

TEST_CASE("test_subprocess_concurrent_wait: several tasks wait for one child at once") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_exec("cat", {}, piped_in_out());
        auto [out, err] = co_await proc.communicate("some data");
        REQUIRE(out == "some data");
        REQUIRE(proc.returncode() == 0);
        std::vector<aio::task<int>> waits;
        for (int i = 0; i < 10; ++i) waits.push_back(proc.wait());
        const std::vector<int> codes = co_await aio::gather(std::move(waits));
        REQUIRE(codes == std::vector<int>(10, 0));
    };
    run_subprocess(body);
}

TEST_CASE("several tasks wait for a running child and all get its return code") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_shell("sleep 0.05; exit 4");
        std::vector<aio::task<int>> waits;
        for (int i = 0; i < 10; ++i) waits.push_back(proc.wait());
        const std::vector<int> codes = co_await aio::gather(std::move(waits));
        REQUIRE(codes == std::vector<int>(10, 4));
    };
    run_subprocess(body);
}

TEST_CASE("test_devnull_input / output / error: devnull reads as empty and swallows output") {
    auto body = []() -> aio::task<> {
        aio::process in_null = co_await aio::create_subprocess_shell("wc -c", {.std_in = sp::devnull, .std_out = sp::pipe});
        auto [count, e1] = co_await in_null.communicate();
        REQUIRE(count.find('0') != std::string::npos);
        aio::process out_null =
            co_await aio::create_subprocess_shell("cat; echo err >&2", {.std_in = sp::pipe, .std_out = sp::devnull, .std_err = sp::pipe});
        auto [o2, err] = co_await out_null.communicate("abc");
        REQUIRE(o2.empty());
        REQUIRE(err == "err\n");
        REQUIRE_FALSE(out_null.has_std_out());
        REQUIRE_THROWS_AS(out_null.std_out(), aio::invalid_state_error);
    };
    run_subprocess(body);
}

TEST_CASE("test_empty_input: communicate with empty input gives the child an empty stdin") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_shell("wc -c", piped_in_out());
        auto [out, err] = co_await proc.communicate("");
        REQUIRE(out.find('0') != std::string::npos);
        REQUIRE(proc.returncode() == 0);
    };
    run_subprocess(body);
}

TEST_CASE("test_create_subprocess_env_exec / env_shell: the environment given is the child's") {
    auto body = []() -> aio::task<> {
        std::map<std::string, std::string> env = sp::current_environment();
        env["FOO"] = "baz";
        // Options that hold an environment or a directory are built before the co_await:
        // g++ 12 destroys such a braced temporary twice inside a co_await expression.
        const aio::process_options with_foo{.std_out = sp::pipe, .env = env};
        aio::process proc = co_await aio::create_subprocess_shell("printf %s \"$FOO\"", with_foo);
        auto [out, err] = co_await proc.communicate();
        REQUIRE(out == "baz");
        // Only what was given: env prints exactly it.
        std::map<std::string, std::string> only;
        only["A"] = "1";
        only["B"] = "two";
        const aio::process_options only_these{.std_out = sp::pipe, .env = only};
        aio::process bare = co_await aio::create_subprocess_exec("/usr/bin/env", {}, only_these);
        auto [listing, e2] = co_await bare.communicate();
        REQUIRE(listing == "A=1\nB=two\n");
    };
    run_subprocess(body);
}

TEST_CASE("check_stdout_output: wait after communicate returns at once") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_exec("sh", "-c", "printf bar", aio::process_options{.std_out = sp::pipe});
        auto [out, err] = co_await proc.communicate();
        REQUIRE(out == "bar");
        REQUIRE(proc.returncode() == 0);
        aio::task_handle<int> waiting = aio::create_task(proc.wait());
        co_await aio::sleep(0s);
        REQUIRE(waiting.done());
        REQUIRE(waiting.result() == 0);
    };
    run_subprocess(body);
}

TEST_CASE("test_subprocess_communicate_stdout: ten children's outputs, each its own") {
    auto body = []() -> aio::task<> {
        std::vector<aio::task<std::string>> runs;
        for (int i = 0; i < 10; ++i)
            runs.push_back([](int n) -> aio::task<std::string> {
                aio::process proc = co_await aio::create_subprocess_exec("echo", "foo" + std::to_string(n), aio::process_options{.std_out = sp::pipe});
                auto [out, err] = co_await proc.communicate();
                co_return out;
            }(i));
        const std::vector<std::string> outputs = co_await aio::gather(std::move(runs));
        for (int i = 0; i < 10; ++i) REQUIRE(outputs[static_cast<std::size_t>(i)] == "foo" + std::to_string(i) + "\n");
    };
    run_subprocess(body);
}

// --- beyond CPython's tests

TEST_CASE("a hundred children run at once, each reaped with its own output") {
    auto body = []() -> aio::task<> {
        std::vector<aio::task<bool>> runs;
        for (int i = 0; i < 100; ++i)
            runs.push_back([]() -> aio::task<bool> {
                aio::process proc = co_await aio::create_subprocess_shell("echo $$", {.std_out = sp::pipe});
                auto [out, err] = co_await proc.communicate();
                co_return out == std::to_string(proc.pid()) + "\n" && proc.returncode() == 0;
            }());
        const std::vector<bool> ok = co_await aio::gather(std::move(runs));
        REQUIRE(ok == std::vector<bool>(100, true));
    };
    run_subprocess(body, 60s);
}

TEST_CASE("64 MiB from a child reach a slow reader whole, the child never far ahead of it") {
    auto body = []() -> aio::task<> {
        constexpr std::uint64_t size = std::uint64_t{64} << 20;
        aio::process proc = co_await aio::create_subprocess_exec("head", "-c", std::to_string(size), "/dev/zero", aio::process_options{.std_out = sp::pipe});
        const aio::stream_reader out = proc.std_out();
        // What may be in flight: the pipe (at most its maximum size) and the reader's
        // buffer (twice the limit, plus one read of 64 KiB), with room to spare.
        const std::uint64_t bound = (std::uint64_t{1} << 20) + 2 * out.limit() + (std::uint64_t{256} << 10);
        std::uint64_t total = 0;
        std::uint64_t ahead_most = 0;
        bool checked_ahead = false;
        bool all_zero = true;
        for (int reads = 0; reads < 1'000'000; ++reads) {
            const std::string chunk = co_await out.read(16384);
            if (chunk.empty()) break;
            all_zero = all_zero && chunk.find_first_not_of('\0') == std::string::npos;
            total += chunk.size();
            if (reads % 256 == 0) {
                co_await aio::sleep(1ms);  // the slow part
                if (std::optional<std::uint64_t> written = bytes_written(proc.pid())) {
                    checked_ahead = true;
                    if (*written > total && *written - total > ahead_most) ahead_most = *written - total;
                }
            }
        }
        REQUIRE(total == size);
        REQUIRE(all_zero);
        if (checked_ahead) REQUIRE(ahead_most <= bound);
        else WARN("/proc/<pid>/io unreadable: how far the child ran ahead was not checked");
        const int returncode = co_await proc.wait();
        REQUIRE(returncode == 0);
    };
    run_subprocess(body, 120s);
}

TEST_CASE("a program that is not found is an os_error ENOENT from create_subprocess_exec") {
    auto body = []() -> aio::task<> {
        for (const char* program : {"aio-no-such-program", "/nonexistent/aio-no-such-program"}) {
            int error = 0;
            std::string what;
            try {
                aio::process proc = co_await aio::create_subprocess_exec(program);
            } catch (const aio::os_error& e) {
                error = e.error_number();
                what = e.what();
            }
            REQUIRE(error == ENOENT);
            REQUIRE(what.find(program) != std::string::npos);
        }
        // Not executable: EACCES.
        int error = 0;
        try {
            aio::process proc = co_await aio::create_subprocess_exec("/etc/passwd");
        } catch (const aio::os_error& e) {
            error = e.error_number();
        }
        REQUIRE(error == EACCES);
    };
    run_subprocess(body);
}

TEST_CASE("bad requests are clear exceptions, and start no child") {
    auto body = []() -> aio::task<> {
        auto invalid = [](aio::task<aio::process> t) -> aio::task<std::string> {
            try {
                aio::process proc = co_await std::move(t);
            } catch (const std::invalid_argument& e) {
                co_return e.what();
            }
            co_return "";
        };
        std::string what = co_await invalid(aio::create_subprocess_exec("cat", {}, {.std_out = sp::std_out}));
        REQUIRE(what.find("std_err") != std::string::npos);
        what = co_await invalid(aio::create_subprocess_exec("cat", {}, {.std_in = sp::std_out}));
        REQUIRE(what.find("std_err") != std::string::npos);
        what = co_await invalid(aio::create_subprocess_exec(""));
        REQUIRE(what.find("empty") != std::string::npos);
        what = co_await invalid(aio::create_subprocess_exec("echo", std::string("a\0b", 3)));
        REQUIRE(what.find("null byte") != std::string::npos);
        std::map<std::string, std::string> bad_env;
        bad_env["A=B"] = "c";
        const aio::process_options bad{.env = bad_env};
        what = co_await invalid(aio::create_subprocess_exec("true", {}, bad));
        REQUIRE(what.find("environment") != std::string::npos);
        what = co_await invalid(aio::create_subprocess_exec("cat", {}, {.limit = 0}));
        REQUIRE(what.find("limit") != std::string::npos);
        REQUIRE_THROWS_AS(aio::process_options{.std_out = -2}, std::invalid_argument);
        // A descriptor that is not open.
        int error = 0;
        try {
            aio::process proc = co_await aio::create_subprocess_exec("true", {}, {.std_out = 987});
        } catch (const aio::os_error& e) {
            error = e.error_number();
        }
        REQUIRE(error == EBADF);
        // Input for a stdin that is not a pipe would be lost.
        aio::process proc = co_await aio::create_subprocess_exec("true");
        REQUIRE_THROWS_AS(proc.communicate("lost"), std::invalid_argument);
        (void)co_await proc.wait();
    };
    run_subprocess(body);
}

TEST_CASE("create_subprocess_exec starts nothing until it is awaited") {
    {
        aio::task<aio::process> lazy = aio::create_subprocess_exec("sleep", program_blocked);
    }
    REQUIRE(no_child_left());
}

TEST_CASE("an empty process (moved from) throws invalid_state_error") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_exec("true");
        aio::process moved = std::move(proc);
        REQUIRE_THROWS_AS(proc.pid(), aio::invalid_state_error);
        REQUIRE_THROWS_AS(proc.wait(), aio::invalid_state_error);
        REQUIRE_THROWS_AS(proc.kill(), aio::invalid_state_error);
        const int returncode = co_await moved.wait();
        REQUIRE(returncode == 0);
    };
    run_subprocess(body);
}

TEST_CASE("a signal for a reaped child is process_lookup_error; before that it is delivered") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_exec("true");
        (void)co_await proc.wait();
        REQUIRE_THROWS_AS(proc.kill(), aio::process_lookup_error);
        REQUIRE_THROWS_AS(proc.terminate(), aio::process_lookup_error);
        REQUIRE_THROWS_AS(proc.send_signal(SIGHUP), aio::process_lookup_error);
        aio::process running = co_await aio::create_subprocess_exec("sleep", program_blocked);
        REQUIRE_THROWS_AS(running.send_signal(100000), aio::os_error);  // not a signal: EINVAL
        running.kill();
        const int returncode = co_await running.wait();
        REQUIRE(returncode == -SIGKILL);
    };
    run_subprocess(body);
}

TEST_CASE("std_err = std_out sends the child's stderr into its stdout pipe") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_shell("echo out; echo err >&2", {.std_out = sp::pipe, .std_err = sp::std_out});
        auto [out, err] = co_await proc.communicate();
        REQUIRE(out == "out\nerr\n");
        REQUIRE(err.empty());
        REQUIRE_FALSE(proc.has_std_err());
    };
    run_subprocess(body);
}

TEST_CASE("a descriptor of the caller's becomes the child's stdout") {
    auto body = []() -> aio::task<> {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        aio::process proc = co_await aio::create_subprocess_exec("echo", "through a descriptor", aio::process_options{.std_out = fds[1]});
        ::close(fds[1]);
        const int returncode = co_await proc.wait();
        REQUIRE(returncode == 0);
        char buffer[64] = {};
        const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
        ::close(fds[0]);
        REQUIRE(std::string(buffer, n > 0 ? static_cast<std::size_t>(n) : 0) == "through a descriptor\n");
    };
    run_subprocess(body);
}

TEST_CASE("the working directory given is the child's, and one that does not exist is an os_error") {
    auto body = []() -> aio::task<> {
        const aio::process_options in_usr{.std_out = sp::pipe, .cwd = "/usr"};
        aio::process proc = co_await aio::create_subprocess_exec("pwd", {}, in_usr);
        auto [out, err] = co_await proc.communicate();
        REQUIRE(out == "/usr\n");
        int error = 0;
        std::string what;
        try {
            const aio::process_options nowhere{.cwd = "/nonexistent-aio-dir"};
            aio::process none = co_await aio::create_subprocess_exec("pwd", {}, nowhere);
        } catch (const aio::os_error& e) {
            error = e.error_number();
            what = e.what();
        }
        REQUIRE(error == ENOENT);
        REQUIRE(what.find("/nonexistent-aio-dir") != std::string::npos);
    };
    run_subprocess(body);
}

TEST_CASE("start_new_session puts the child in a session of its own") {
    auto body = []() -> aio::task<> {
        aio::process fresh = co_await aio::create_subprocess_exec("cat", "/proc/self/stat", aio::process_options{.std_out = sp::pipe, .start_new_session = true});
        auto [stat, e1] = co_await fresh.communicate();
        REQUIRE(session_of(stat) == fresh.pid());
        aio::process same = co_await aio::create_subprocess_exec("cat", "/proc/self/stat", aio::process_options{.std_out = sp::pipe});
        auto [stat2, e2] = co_await same.communicate();
        REQUIRE(session_of(stat2) == ::getsid(0));
    };
    run_subprocess(body);
}

TEST_CASE("no descriptor of the parent reaches the child but 0, 1 and 2") {
    auto body = []() -> aio::task<> {
        const int leaky = ::open("/dev/null", O_RDONLY);  // not close-on-exec
        REQUIRE(leaky > 2);
        aio::process proc = co_await aio::create_subprocess_exec("ls", "/proc/self/fd", aio::process_options{.std_in = sp::pipe, .std_out = sp::pipe, .std_err = sp::pipe});
        auto [out, err] = co_await proc.communicate();
        ::close(leaky);
        REQUIRE(out == "0\n1\n2\n3\n");  // 3: ls's own listing of the directory
    };
    run_subprocess(body);
}

TEST_CASE("the child's signal mask is empty and SIGPIPE is at its default") {
    auto body = []() -> aio::task<> {
        sigset_t block, previous;
        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        ::pthread_sigmask(SIG_BLOCK, &block, &previous);
        struct sigaction ignore {};
        ignore.sa_handler = SIG_IGN;
        struct sigaction old_pipe {};
        ::sigaction(SIGPIPE, &ignore, &old_pipe);
        aio::process status = co_await aio::create_subprocess_exec("grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status", aio::process_options{.std_out = sp::pipe});
        ::sigaction(SIGPIPE, &old_pipe, nullptr);
        ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
        auto [out, err] = co_await status.communicate();
        REQUIRE(out.find("SigBlk:\t0000000000000000") != std::string::npos);
        // Bit 13 (SIGPIPE) is not ignored.
        const std::size_t at = out.find("SigIgn:\t");
        REQUIRE(at != std::string::npos);
        const unsigned long long ignored = std::stoull(out.substr(at + 8, 16), nullptr, 16);
        REQUIRE((ignored & (1ull << (SIGPIPE - 1))) == 0);
    };
    run_subprocess(body);
}

TEST_CASE("a child still running when the loop closes is killed and reaped; its handle sees -SIGKILL") {
    auto make = []() -> aio::task<aio::process> {
        aio::process proc = co_await aio::create_subprocess_exec("sleep", program_blocked);
        co_return proc;
    };
    const std::size_t before = aio_test::open_descriptors();
    aio::process kept = aio::run(make());
    REQUIRE(kept.returncode() == -SIGKILL);
    REQUIRE_THROWS_AS(kept.kill(), aio::process_lookup_error);
    REQUIRE(no_child_left());
    REQUIRE(aio_test::open_descriptors() == before);
}

TEST_CASE("a dropped handle whose child still runs when the loop closes leaves no zombie") {
    auto body = []() -> aio::task<> {
        for (int i = 0; i < 5; ++i) {
            aio::process proc = co_await aio::create_subprocess_exec("sleep", program_blocked, {.std_out = sp::pipe});
        }
    };
    run_subprocess(body);
}

TEST_CASE("a wait in progress keeps the child's state alive after the process is dropped") {
    auto body = []() -> aio::task<> {
        aio::task_handle<int> waiting;
        {
            aio::process proc = co_await aio::create_subprocess_exec("sleep", program_blocked);
            waiting = aio::create_task(proc.wait());
            co_await aio::sleep(0s);
        }
        const int returncode = co_await waiting;
        REQUIRE(returncode == -SIGKILL);
    };
    run_subprocess(body);
}

TEST_CASE("readline on a child's stdout reads lines as they come") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_shell("for i in 1 2 3; do echo line $i; done", {.std_out = sp::pipe});
        std::vector<std::string> lines;
        for (int i = 0; i < 10; ++i) {
            std::string line = co_await proc.std_out().readline();
            if (line.empty()) break;
            lines.push_back(std::move(line));
        }
        REQUIRE(lines == std::vector<std::string>{"line 1\n", "line 2\n", "line 3\n"});
        REQUIRE(proc.std_out().at_eof());
        const int returncode = co_await proc.wait();
        REQUIRE(returncode == 0);
    };
    run_subprocess(body);
}

// --- the review's cases: both directions at once, cancellation, a process outliving
// its loop, bad bytes, an exec that fails once the pipes are made, many children

namespace {
// `size` bytes that are not all alike (a lost or reordered block shows).
std::string patterned(std::size_t size) {
    std::string s(size, '\0');
    for (std::size_t i = 0; i < size; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 4093) % 26);
    return s;
}

aio::task<std::optional<std::string>> invalid_argument_of(aio::task<aio::process> t) {
    std::optional<std::string> what;
    try {
        aio::process proc = co_await std::move(t);
    } catch (const std::invalid_argument& e) {
        what = e.what();
    }
    co_return what;
}
}  // namespace

TEST_CASE("communicate moves 8 MiB in while 8 MiB come back on stdout and on stderr, without deadlock") {
    auto body = []() -> aio::task<> {
        const std::string input = patterned(std::size_t{8} << 20);
        aio::process proc = co_await aio::create_subprocess_exec(
            "tee", "/dev/stderr", aio::process_options{.std_in = sp::pipe, .std_out = sp::pipe, .std_err = sp::pipe});
        auto [out, err] = co_await proc.communicate(input);
        REQUIRE(out.size() == input.size());
        REQUIRE(err.size() == input.size());
        REQUIRE(out == input);
        REQUIRE(err == input);
        REQUIRE(proc.returncode() == 0);
    };
    run_subprocess(body, 60s);
}

TEST_CASE("a cancelled communicate leaves the child running with its pipes, to be killed and waited for") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_shell(
            "echo ready; exec sleep 3600", {.std_in = sp::pipe, .std_out = sp::pipe, .std_err = sp::pipe});
        // The child reads none of its input: the feed waits in drain, the reads wait for EOF.
        bool timed_out = false;
        try {
            (void)co_await aio::wait_for(proc.communicate(std::string(std::size_t{4} << 20, 'x')), 200ms);
        } catch (const aio::timeout_error&) {
            timed_out = true;
        }
        REQUIRE(timed_out);
        REQUIRE_FALSE(proc.returncode().has_value());
        REQUIRE(still_a_child(proc.pid()));
        REQUIRE(proc.has_std_in());
        REQUIRE(proc.has_std_out());
        proc.kill();
        const int returncode = co_await proc.wait();
        REQUIRE(returncode == -SIGKILL);
    };
    run_subprocess(body);
}

TEST_CASE("communicate a second time returns empty output and does not throw") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_exec("cat", {}, {.std_in = sp::pipe, .std_out = sp::pipe, .std_err = sp::pipe});
        auto [out, err] = co_await proc.communicate("once");
        REQUIRE(out == "once");
        auto [out2, err2] = co_await proc.communicate();
        REQUIRE(out2.empty());
        REQUIRE(err2.empty());
        REQUIRE(proc.returncode() == 0);
    };
    run_subprocess(body);
}

TEST_CASE("a child that closes its stdout early and keeps running: the reader sees EOF, wait() waits for its exit") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_shell("echo early; exec 1>&-; read line; exit 7",
                                                                  {.std_in = sp::pipe, .std_out = sp::pipe});
        const std::string out = co_await proc.std_out().read();
        REQUIRE(out == "early\n");
        REQUIRE(proc.std_out().at_eof());
        REQUIRE_FALSE(proc.returncode().has_value());  // it still waits for its line
        REQUIRE(still_a_child(proc.pid()));
        proc.std_in().write("go\n");
        proc.std_in().close();
        const int returncode = co_await proc.wait();
        REQUIRE(returncode == 7);
    };
    run_subprocess(body);
}

TEST_CASE("wait() on a process whose loop has closed returns its return code at once, on another loop") {
    const std::size_t before = aio_test::open_descriptors();
    {
        auto make = []() -> aio::task<aio::process> {
            aio::process proc = co_await aio::create_subprocess_shell("exit 5");
            co_return proc;
        };
        auto finished = []() -> aio::task<aio::process> {
            aio::process proc = co_await aio::create_subprocess_exec("true");
            (void)co_await proc.wait();
            co_return proc;
        };
        aio::process running = aio::run(make());  // killed by the closing loop unless it exited first
        aio::process done = aio::run(finished());
        auto waits = [](aio::process& a, aio::process& b) -> aio::task<std::pair<int, int>> {
            const int first = co_await a.wait();
            const int second = co_await b.wait();
            co_return std::pair<int, int>(first, second);
        };
        const auto [first, second] = aio::run(waits(running, done));
        REQUIRE((first == 5 || first == -SIGKILL));
        REQUIRE(second == 0);
        aio::process moved = std::move(running);
        REQUIRE(moved.returncode() == first);
        REQUIRE_THROWS_AS(moved.kill(), aio::process_lookup_error);
    }
    REQUIRE(no_child_left());
    REQUIRE(aio_test::open_descriptors() == before);
}

TEST_CASE("a task still pending at close that holds a running child: close() kills and reaps it, and no descriptor is left") {
    const std::size_t before = aio_test::open_descriptors();
    {
        aio::event_loop loop;
        aio::event started;
        auto holder = [](aio::event& started) -> aio::task<> {
            aio::process proc = co_await aio::create_subprocess_exec("sleep", program_blocked, {.std_in = sp::pipe, .std_out = sp::pipe});
            started.set();
            aio::event never;
            co_await never.wait();
        };
        auto main_task = [&]() -> aio::task<> {
            aio::task_handle<> h = aio::create_task(holder(started));
            co_await started.wait();
        };
        loop.run_until_complete(main_task());
        loop.close();
        REQUIRE(no_child_left());
    }
    REQUIRE(aio_test::open_descriptors() == before);
}

TEST_CASE("NUL bytes in the program, an argument, an environment entry, the working directory or a shell command are std::invalid_argument") {
    auto body = []() -> aio::task<> {
        std::optional<std::string> what = co_await invalid_argument_of(aio::create_subprocess_exec(std::string("ca\0t", 4)));
        REQUIRE(what);
        REQUIRE(what->find("null byte") != std::string::npos);
        std::vector<std::string> args(1, "fine");
        args.emplace_back("a\0b", 3);
        what = co_await invalid_argument_of(aio::create_subprocess_exec("echo", std::move(args)));
        REQUIRE(what);
        REQUIRE(what->find("argument") != std::string::npos);
        std::vector<std::pair<std::string, std::string>> bad_entries;
        bad_entries.emplace_back(std::string("A\0B", 3), "x");
        bad_entries.emplace_back("A", std::string("x\0y", 3));
        bad_entries.emplace_back("", "x");
        for (const std::pair<std::string, std::string>& entry : bad_entries) {
            std::map<std::string, std::string> env;
            env[entry.first] = entry.second;
            const aio::process_options bad{.env = env};
            what = co_await invalid_argument_of(aio::create_subprocess_exec("true", {}, bad));
            REQUIRE(what);
            REQUIRE(what->find("environment") != std::string::npos);
        }
        const aio::process_options bad_cwd{.cwd = std::string("/tmp\0/x", 7)};
        what = co_await invalid_argument_of(aio::create_subprocess_exec("true", {}, bad_cwd));
        REQUIRE(what);
        REQUIRE(what->find("working directory") != std::string::npos);
        what = co_await invalid_argument_of(aio::create_subprocess_shell(std::string("echo a\0b", 8)));
        REQUIRE(what);
        REQUIRE(what->find("null byte") != std::string::npos);
    };
    run_subprocess(body);
}

TEST_CASE("a working directory that is a file is os_error ENOTDIR; a descriptor closed is os_error EBADF naming it") {
    auto body = []() -> aio::task<> {
        int error = 0;
        try {
            const aio::process_options in_file{.cwd = "/etc/passwd"};
            aio::process proc = co_await aio::create_subprocess_exec("true", {}, in_file);
        } catch (const aio::os_error& e) {
            error = e.error_number();
        }
        REQUIRE(error == ENOTDIR);
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        ::close(fds[0]);
        ::close(fds[1]);
        std::string what;
        try {
            aio::process proc = co_await aio::create_subprocess_exec("true", {}, {.std_in = fds[0]});
        } catch (const aio::os_error& e) {
            error = e.error_number();
            what = e.what();
        }
        REQUIRE(error == EBADF);
        REQUIRE(what.find(std::to_string(fds[0])) != std::string::npos);
    };
    run_subprocess(body);
}

TEST_CASE("an exec that fails once the pipes are made (ENOEXEC) is an os_error, and leaves no descriptor and no child") {
    char path[] = "/tmp/aio-review-noexecXXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, "\x7f\x01\x02\x03garbage", 11) == 11);
    ::fchmod(fd, 0755);
    ::close(fd);
    const std::string program = path;
    auto body = [&program]() -> aio::task<> {
        for (int i = 0; i < 20; ++i) {
            int error = 0;
            try {
                aio::process proc = co_await aio::create_subprocess_exec(
                    program, {}, {.std_in = sp::pipe, .std_out = sp::pipe, .std_err = sp::pipe});
            } catch (const aio::os_error& e) {
                error = e.error_number();
            }
            REQUIRE(error == ENOEXEC);
        }
    };
    run_subprocess(body);
    ::unlink(path);
}

TEST_CASE("1,000 children one after another leave no descriptor and no zombie") {
    auto body = []() -> aio::task<> {
        int ok = 0;
        for (int i = 0; i < 1000; ++i) {
            aio::process proc = co_await aio::create_subprocess_exec("true", {}, {.std_in = sp::pipe, .std_out = sp::pipe, .std_err = sp::pipe});
            auto [out, err] = co_await proc.communicate();
            if (proc.returncode() == 0 && out.empty() && err.empty()) ++ok;
        }
        REQUIRE(ok == 1000);
    };
    run_subprocess(body, 300s);
}

TEST_CASE("dropping the process while a communicate() is in progress ends that communicate; nothing hangs") {
    auto body = []() -> aio::task<> {
        aio::task_handle<std::pair<std::string, std::string>> talking;
        {
            aio::process proc = co_await aio::create_subprocess_shell(
                "echo partial; exec sleep 3600", {.std_in = sp::pipe, .std_out = sp::pipe, .std_err = sp::pipe});
            talking = aio::create_task(proc.communicate(std::string(std::size_t{1} << 20, 'x')));
            for (int i = 0; i < 5; ++i) co_await aio::sleep(0s);
        }
        bool ended = false;
        try {
            (void)co_await aio::wait_for(std::move(talking), 5s);
            ended = true;
        } catch (const aio::timeout_error&) {
        } catch (const std::exception&) {
            ended = true;  // an error is an end too; a hang is not
        }
        REQUIRE(ended);
    };
    run_subprocess(body);
}

TEST_CASE("communicate with input after std_in was closed by hand does not throw") {
    auto body = []() -> aio::task<> {
        aio::process proc = co_await aio::create_subprocess_exec("cat", {}, {.std_in = sp::pipe, .std_out = sp::pipe});
        proc.std_in().close();
        auto [out, err] = co_await proc.communicate("late");
        REQUIRE(out.empty());
        REQUIRE(proc.returncode() == 0);
    };
    run_subprocess(body);
}

TEST_CASE("a process kept after its loop has closed: its pipes are closed streams, communicate returns, nothing crashes") {
    const std::size_t before = aio_test::open_descriptors();
    {
        auto make = []() -> aio::task<aio::process> {
            aio::process proc = co_await aio::create_subprocess_exec("cat", {}, {.std_in = sp::pipe, .std_out = sp::pipe, .std_err = sp::pipe});
            proc.std_in().write("unread");
            co_return proc;
        };
        aio::process kept = aio::run(make());
        REQUIRE(kept.returncode() == -SIGKILL);
        auto use = [](aio::process& p) -> aio::task<int> {
            int outcomes = 0;
            try {
                const std::string data = co_await p.std_out().read();
                (void)data;
                ++outcomes;
            } catch (const std::exception&) {
                ++outcomes;
            }
            try {
                auto [out, err] = co_await p.communicate();
                (void)out;
                ++outcomes;
            } catch (const std::exception&) {
                ++outcomes;
            }
            const int returncode = co_await p.wait();
            REQUIRE(returncode == -SIGKILL);
            co_return outcomes;
        };
        REQUIRE(aio::run(use(kept)) == 2);
    }
    REQUIRE(no_child_left());
    REQUIRE(aio_test::open_descriptors() == before);
}

namespace {
// Asks the kernel to give the next process `pid` (ns_last_pid; needs CAP_SYS_ADMIN).
bool ask_next_pid(pid_t pid) {
    std::ofstream f("/proc/sys/kernel/ns_last_pid");
    if (!f) return false;
    f << (pid - 1);
    f.flush();
    return static_cast<bool>(f);
}

bool has_exited(pid_t pid) {
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid;
}
}  // namespace

TEST_CASE("a child reaped behind aio's back reports 255, and a new child that takes its pid keeps its own status") {
    auto body = []() -> aio::task<> {
        aio::process first = co_await aio::create_subprocess_exec("true");
        const pid_t pid = first.pid();
        // Without letting the loop run (its watch would reap the child first): wait for
        // the exit, and reap it as a program's own waitpid would.
        for (int i = 0; i < 100'000 && !has_exited(pid); ++i) ::usleep(100);
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        const bool asked = ask_next_pid(pid);
        aio::process second = co_await aio::create_subprocess_exec("sleep", program_blocked);
        if (second.pid() != pid)
            WARN("the second child did not get the first one's pid (" << (asked ? "another process took it" : "ns_last_pid not writable")
                                                                       << "): only the 255 is checked");
        const int first_code = co_await first.wait();
        REQUIRE(first_code == 255);
        REQUIRE_FALSE(second.returncode().has_value());
        REQUIRE(still_a_child(second.pid()));
        second.kill();
        const int second_code = co_await second.wait();
        REQUIRE(second_code == -SIGKILL);
    };
    run_subprocess(body);
}

namespace {
// The highest descriptor open now.
int highest_descriptor() {
    int highest = 2;
    for (int fd = 0; fd < 4096; ++fd)
        if (::fcntl(fd, F_GETFD) >= 0) highest = fd;
    return highest;
}
}  // namespace

TEST_CASE("running out of descriptors at any step of a start (a pipe, the pidfd) is os_error EMFILE, and leaves nothing behind") {
    auto body = []() -> aio::task<> {
        // UBSan checks a virtual call through a cache of types, and on a miss needs a
        // descriptor (a pipe) to look: the same checks made once here, with descriptors
        // to spare, keep the steps below that run out of them from a false report.
        try {
            aio::detail::throw_os_error(EMFILE, "aio: a warm-up");
        } catch (const aio::os_error& e) {
            REQUIRE(e.code().message().size() > 0);
        }
        struct rlimit saved {};
        REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
        int failures = 0;
        int successes = 0;
        for (int extra = 0; extra <= 10; ++extra) {
            // The holes below the highest descriptor are filled, so that exactly `extra`
            // descriptors can be made.
            const int highest = highest_descriptor();
            std::vector<int> fillers;
            for (int i = 0; i < 4096; ++i) {
                const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
                if (fd < 0) break;
                if (fd > highest) {
                    ::close(fd);
                    break;
                }
                fillers.push_back(fd);
            }
            struct rlimit tight = saved;
            tight.rlim_cur = static_cast<rlim_t>(highest + 1 + extra);
            REQUIRE(::setrlimit(RLIMIT_NOFILE, &tight) == 0);
            std::optional<aio::process> proc;
            std::exception_ptr failure;
            try {
                proc = co_await aio::create_subprocess_exec("true", {}, {.std_in = sp::pipe, .std_out = sp::pipe, .std_err = sp::pipe});
            } catch (...) {
                failure = std::current_exception();  // looked at below: UBSan needs descriptors to check a type
            }
            REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);
            for (int fd : fillers) ::close(fd);
            int error = 0;
            if (failure) {
                try {
                    std::rethrow_exception(failure);
                } catch (const aio::os_error& e) {
                    error = e.error_number();
                }
            }
            if (proc) {
                ++successes;
                auto [out, err] = co_await proc->communicate();
                REQUIRE(proc->returncode() == 0);
            } else {
                ++failures;
                REQUIRE(error == EMFILE);
            }
            REQUIRE(no_child_left());
        }
        REQUIRE(failures > 0);
        REQUIRE(successes > 0);
    };
    run_subprocess(body);
}
