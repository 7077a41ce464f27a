#pragma once
// Subprocesses (asyncio.create_subprocess_exec / create_subprocess_shell, asyncio's
// Process):
//
//   namespace sp = aio::subprocess;
//   aio::process p = co_await aio::create_subprocess_exec("cat", {}, {.std_in = sp::pipe, .std_out = sp::pipe});
//   auto [out, err] = co_await p.communicate("some data");   // out == "some data"
//   int code = co_await p.wait();                             // 0
//
// The child's standard streams are chosen with `std_in`, `std_out` and `std_err`
// (stdin, stdout and stderr are macros of <cstdio>): aio::subprocess::inherit (the
// default, asyncio's None), pipe (PIPE: a stream to the parent), devnull (DEVNULL),
// std_out (STDOUT, for std_err only: stderr goes where stdout goes), or a descriptor of
// the caller's (an int, duplicated onto it). The pipes are p.std_in() (an
// aio::stream_writer), p.std_out() and p.std_err() (aio::stream_readers); asking for one
// that is not a pipe throws aio::invalid_state_error (asyncio gives None).
//
// The child is started with posix_spawn and watched through a pidfd that the loop polls
// (detail/spawn.hpp, detail/child_watch.hpp): no thread, no SIGCHLD handler. An exec that
// fails is an aio::os_error from create_subprocess_exec (ENOENT for a program not found:
// asyncio's FileNotFoundError), never a child exiting with 127.
//
// Resumption: wait() returns at once when the child has been reaped; otherwise the task
// waits until the loop's step for the pidfd has reaped it, and is woken through the
// ready queue (rule 4). Any number of tasks may wait. Cancelling a wait() changes
// nothing for the child.
//
// Lifetime: destroying a process whose child still runs closes its pipes and kills the
// child (SIGKILL), as asyncio's transport.close() does; the loop reaps it in the
// background. When the loop closes, every child it still watches is killed and reaped
// before close() returns. Never a zombie.

#include <signal.h>
#include <sys/types.h>

#include <cerrno>
#include <concepts>
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/child_watch.hpp"
#include "detail/loop_core.hpp"
#include "detail/spawn.hpp"
#include "errors.hpp"
#include "gather.hpp"
#include "net/detail/stream_transport.hpp"
#include "net/socket.hpp"
#include "net/stream_reader.hpp"
#include "net/stream_writer.hpp"
#include "os_error.hpp"
#include "task.hpp"

namespace aio {

// Python's ProcessLookupError (an OSError, errno ESRCH): a signal for a child that has
// already been reaped.
class process_lookup_error : public os_error {
public:
    using os_error::os_error;
};

namespace subprocess {

// What one of the child's standard streams is: one of the constants below, or a
// descriptor of the caller's (implicitly from an int, as asyncio takes one).
class stdio {
public:
    // A descriptor the caller owns and keeps: the child gets a copy of it.
    stdio(int fd) : choice_{detail::stdio_choice::descriptor, fd} {  // NOLINT: implicit, like asyncio's stdout=fd
        if (fd < 0) throw std::invalid_argument("aio::subprocess::stdio: a descriptor cannot be negative (" + std::to_string(fd) + ")");
    }
    constexpr explicit stdio(detail::stdio_choice::kind_t kind) noexcept : choice_{kind, -1} {}
    constexpr const detail::stdio_choice& choice() const noexcept { return choice_; }
    constexpr bool operator==(const stdio& other) const noexcept {
        return choice_.kind == other.choice_.kind && choice_.fd == other.choice_.fd;
    }

private:
    detail::stdio_choice choice_;
};

inline constexpr stdio inherit{detail::stdio_choice::inherit};  // asyncio's None
inline constexpr stdio pipe{detail::stdio_choice::pipe};        // asyncio.subprocess.PIPE
inline constexpr stdio devnull{detail::stdio_choice::devnull};  // asyncio.subprocess.DEVNULL
inline constexpr stdio std_out{detail::stdio_choice::to_stdout};  // asyncio.subprocess.STDOUT (std_err only)

// The program's own environment as a map: to pass a changed copy (os.environ.copy()).
inline std::map<std::string, std::string> current_environment() {
    std::map<std::string, std::string> env;
    for (char** e = environ; e && *e; ++e) {
        const std::string_view entry(*e);
        const std::size_t eq = entry.find('=');
        if (eq == std::string_view::npos || eq == 0) continue;
        env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
    }
    return env;
}

}  // namespace subprocess

struct process_options {
    subprocess::stdio std_in = subprocess::inherit;
    subprocess::stdio std_out = subprocess::inherit;
    subprocess::stdio std_err = subprocess::inherit;
    // The child's whole environment; unset: the parent's. PATH in it is where a program
    // without a '/' is looked for.
    std::optional<std::map<std::string, std::string>> env{};
    std::optional<std::filesystem::path> cwd{};  // where the child starts
    bool start_new_session = false;               // setsid() in the child
    std::size_t limit = detail::stream_transport::default_limit;  // of the std_out and std_err readers
};

namespace detail {

inline task<int> wait_for_exit(child_ref c) {
    if (!c->reaped()) co_await c->exited().wait();
    co_return *c->returncode();
}

// asyncio's _feed_stdin: a broken pipe or a reset is not an error (the child did not
// want the rest).
inline task<> feed_stdin(transport_ref in, std::string input) {
    if (!in) co_return;
    stream_writer writer(in);
    if (!input.empty()) writer.write(input);
    try {
        co_await writer.drain();
    } catch (const broken_pipe_error&) {
    } catch (const connection_reset_error&) {
    }
    writer.close();
}

// asyncio's _read_stream: everything to EOF, then the pipe is closed.
inline task<std::string> read_to_eof(transport_ref t) {
    if (!t) co_return std::string();
    stream_reader reader(t);
    std::string all = co_await reader.read(-1);
    t->close();
    co_return all;
}

inline task<std::pair<std::string, std::string>> communicate(child_ref c, transport_ref in, transport_ref out, transport_ref err,
                                                             std::string input) {
    auto results = co_await gather(feed_stdin(std::move(in), std::move(input)), read_to_eof(std::move(out)),
                                   read_to_eof(std::move(err)));
    (void)co_await wait_for_exit(std::move(c));
    co_return std::pair<std::string, std::string>(std::move(std::get<1>(results)), std::move(std::get<2>(results)));
}

struct process_access;

inline transport_ref pipe_stream(loop_core& loop, unique_fd fd, std::size_t limit) {
    if (!fd) return {};
    return transport_ref(stream_transport::open(loop, socket::adopt(fd.release()), limit));
}

}  // namespace detail

class process {
public:
    process() noexcept = default;  // empty: every call but the destructor throws
    process(process&&) noexcept = default;
    process& operator=(process&& other) noexcept {
        if (this != &other) {
            close();
            child_ = std::move(other.child_);
            in_ = std::move(other.in_);
            out_ = std::move(other.out_);
            err_ = std::move(other.err_);
        }
        return *this;
    }
    process(const process&) = delete;
    process& operator=(const process&) = delete;
    // A child still running is killed and reaped in the background; its pipes close.
    ~process() { close(); }

    pid_t pid() const { return checked()->pid(); }
    // Unset while the child runs; its exit status, or -N when signal N ended it.
    std::optional<int> returncode() const { return checked()->returncode(); }

    // The pipes (given as aio::subprocess::pipe); aio::invalid_state_error otherwise.
    stream_writer std_in() const { return stream_writer(pipe_of(in_, "std_in")); }
    stream_reader std_out() const { return stream_reader(pipe_of(out_, "std_out")); }
    stream_reader std_err() const { return stream_reader(pipe_of(err_, "std_err")); }
    bool has_std_in() const noexcept { return static_cast<bool>(in_); }
    bool has_std_out() const noexcept { return static_cast<bool>(out_); }
    bool has_std_err() const noexcept { return static_cast<bool>(err_); }

    // The return code, once the child has exited and been reaped.
    task<int> wait() const { return detail::wait_for_exit(checked()); }

    // Feeds `input` to std_in and closes it, reads std_out and std_err to EOF, all at once,
    // then waits for the child: (its stdout, its stderr), "" for a stream that is not a
    // pipe (asyncio: None). A broken pipe on std_in is ignored. Input for a std_in that is
    // not a pipe is an error (asyncio drops it silently).
    // Cancel safety: cancelling it cancels the three; what was read is lost.
    task<std::pair<std::string, std::string>> communicate(std::string input = {}) const {
        const detail::child_ref& c = checked();
        if (!input.empty() && !in_)
            throw std::invalid_argument("aio::process::communicate: input given, but std_in is not aio::subprocess::pipe");
        return detail::communicate(c, in_, out_, err_, std::move(input));
    }

    // Signals the child (through its pidfd: never another process that took its pid).
    // aio::process_lookup_error once the child has been reaped (asyncio 3.13 raises
    // ProcessLookupError once its transport has finished).
    void send_signal(int sig) const {
        const detail::child_ref& c = checked();
        const int error = c->reaped() ? ESRCH : c->send_signal(sig);
        if (error == 0) return;
        if (error == ESRCH)
            throw process_lookup_error(ESRCH, "aio::process::send_signal: process " + std::to_string(c->pid()) + " has exited");
        detail::throw_os_error(error, "aio::process::send_signal(" + std::to_string(sig) + ")");
    }
    void terminate() const { send_signal(SIGTERM); }
    void kill() const { send_signal(SIGKILL); }

private:
    friend struct detail::process_access;

    static process start(const char* who, std::string program, std::vector<std::string> args, const process_options& o) {
        if (o.limit == 0) throw std::invalid_argument(std::string(who) + ": limit cannot be 0");
        detail::loop_core& loop = *detail::running_loop_or_throw(who);
        detail::spawn_request r;
        r.who = who;
        r.program = std::move(program);
        r.args = std::move(args);
        r.in = o.std_in.choice();
        r.out = o.std_out.choice();
        r.err = o.std_err.choice();
        r.env = o.env ? &*o.env : nullptr;
        r.cwd = o.cwd ? &*o.cwd : nullptr;
        r.new_session = o.start_new_session;
        detail::spawned_child child = detail::spawn(r);
        process p;
        p.child_ = detail::child_ref(detail::child_watch::start(loop, child.pid, std::move(child.pidfd)));
        // From here on a failure kills the child (p's destructor).
        p.in_ = detail::pipe_stream(loop, std::move(child.in), o.limit);
        p.out_ = detail::pipe_stream(loop, std::move(child.out), o.limit);
        p.err_ = detail::pipe_stream(loop, std::move(child.err), o.limit);
        return p;
    }

    const detail::child_ref& checked() const {
        if (!child_) throw invalid_state_error("aio::process: empty (moved from, or default-constructed)");
        return child_;
    }
    const detail::transport_ref& pipe_of(const detail::transport_ref& t, const char* name) const {
        checked();
        if (!t)
            throw invalid_state_error(std::string("aio::process::") + name + "(): the child's " + name +
                                      " is not a pipe (give " + name + " = aio::subprocess::pipe)");
        return t;
    }

    // asyncio's transport.close(): the pipes close, and a child still running is killed.
    void close() noexcept {
        for (detail::transport_ref* t : {&in_, &out_, &err_}) {
            if (*t) (*t)->close();
            *t = detail::transport_ref();
        }
        if (child_ && !child_->reaped()) (void)child_->send_signal(SIGKILL);
        child_ = detail::child_ref();
    }

    detail::child_ref child_;
    detail::transport_ref in_;
    detail::transport_ref out_;
    detail::transport_ref err_;
};

namespace detail {
struct process_access {
    static process start(const char* who, std::string program, std::vector<std::string> args, const process_options& o) {
        return process::start(who, std::move(program), std::move(args), o);
    }
};

// The one coroutine behind both (lazy: nothing starts until it is awaited).
inline task<process> start_process(const char* who, std::string program, std::vector<std::string> args, process_options options) {
    co_return process_access::start(who, std::move(program), std::move(args), options);
}
}  // namespace detail

// Runs `program` with `args` (asyncio's create_subprocess_exec(program, *args, ...)). A
// program without a '/' is looked for in PATH.
inline task<process> create_subprocess_exec(std::string program, std::vector<std::string> args = {}, process_options options = {}) {
    return detail::start_process("aio::create_subprocess_exec", std::move(program), std::move(args), std::move(options));
}

// The same, the arguments given one by one, the options (an aio::process_options) last
// if at all: create_subprocess_exec("sh", "-c", "exit 3").
template <class... Args>
    requires(sizeof...(Args) >= 1 &&
             ((std::is_convertible_v<const Args&, std::string_view> || std::is_same_v<std::remove_cvref_t<Args>, process_options>) && ...))
task<process> create_subprocess_exec(std::string program, Args&&... args) {
    std::vector<std::string> list;
    process_options options;
    auto take = [&](auto&& a) {
        if constexpr (std::is_same_v<std::remove_cvref_t<decltype(a)>, process_options>) options = std::forward<decltype(a)>(a);
        else list.emplace_back(std::string_view(a));
    };
    (take(std::forward<Args>(args)), ...);
    return create_subprocess_exec(std::move(program), std::move(list), std::move(options));
}

// Runs `cmd` with /bin/sh -c (asyncio's create_subprocess_shell).
inline task<process> create_subprocess_shell(std::string cmd, process_options options = {}) {
    std::vector<std::string> args;
    args.push_back("-c");
    args.push_back(std::move(cmd));
    return detail::start_process("aio::create_subprocess_shell", "/bin/sh", std::move(args), std::move(options));
}

}  // namespace aio
