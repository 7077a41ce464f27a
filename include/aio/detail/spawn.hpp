#pragma once
// Starting a child process: what asyncio's _UnixSubprocessTransport._start does through
// subprocess.Popen, done with posix_spawn (glibc's clone(CLONE_VM | CLONE_VFORK): the
// parent's memory is not copied, and it resumes once the child has exec'd, or failed to).
//
// - An exec that fails (no such program, not executable) is posix_spawn's own error in
//   the parent, reported as aio::os_error with its errno (asyncio: FileNotFoundError,
//   PermissionError); a program without a '/' is looked up in PATH first — the PATH of
//   the environment given to the child, else the parent's, as subprocess does.
// - Every descriptor the parent makes is close-on-exec, and the child closes every
//   descriptor above 2 before it execs (subprocess's close_fds=True): nothing of the
//   parent leaks into the child but its 0, 1 and 2.
// - The child starts with an empty signal mask and SIGPIPE and SIGXFSZ at their
//   defaults (subprocess's restore_signals); a signal the parent ignores otherwise stays
//   ignored across exec, as it does for any child (nohup relies on it).
// - Its exit is watched through a pidfd (pidfd_open, Linux 5.3), opened before anyone can
//   reap it, so it names this child and no other: see child_watch.hpp.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <filesystem>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../os_error.hpp"

extern "C" char** environ;

namespace aio::detail {

// What one of the child's standard descriptors is (asyncio's stdin=, stdout=, stderr=).
struct stdio_choice {
    enum kind_t : unsigned char {
        inherit,     // the parent's own (asyncio's None)
        pipe,        // a pipe to the parent, made a stream (PIPE)
        devnull,     // /dev/null (DEVNULL)
        to_stdout,   // whatever the child's stdout is; for stderr only (STDOUT)
        descriptor,  // a descriptor of the caller's, duplicated onto it
    };
    kind_t kind = inherit;
    int fd = -1;  // for `descriptor`
};

// A descriptor that closes itself.
class unique_fd {
public:
    unique_fd() noexcept = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(unique_fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    unique_fd& operator=(unique_fd&& other) noexcept {
        if (this != &other) reset(std::exchange(other.fd_, -1));
        return *this;
    }
    ~unique_fd() { reset(); }
    int get() const noexcept { return fd_; }
    explicit operator bool() const noexcept { return fd_ >= 0; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

struct spawn_request {
    const char* who = "aio::create_subprocess_exec";  // names the errors
    std::string program;
    std::vector<std::string> args;  // after the program (argv[1] on)
    stdio_choice in{};
    stdio_choice out{};
    stdio_choice err{};
    const std::map<std::string, std::string>* env = nullptr;  // null: the parent's
    const std::filesystem::path* cwd = nullptr;               // null: the parent's
    bool new_session = false;
};

// The started child: its pid, its pidfd, and the parent's ends of its pipes (non-blocking
// is left to the transports; every one is close-on-exec).
struct spawned_child {
    pid_t pid = -1;
    unique_fd pidfd;
    unique_fd in;   // the write end of the child's stdin
    unique_fd out;  // the read end of its stdout
    unique_fd err;  // the read end of its stderr
};

inline int pidfd_open(pid_t pid) noexcept { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0u)); }
inline int pidfd_send_signal(int pidfd, int sig) noexcept {
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0u));
}

inline void check_no_nul(std::string_view s, const char* who, const char* what) {
    if (s.find('\0') != std::string_view::npos)
        throw std::invalid_argument(std::string(who) + ": embedded null byte in " + what);
}

inline std::string single_quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// A pipe whose two ends are both above 2 (so that no dup2 onto 0, 1 or 2 in the child
// can overwrite an end still to be duplicated), close-on-exec.
inline std::pair<unique_fd, unique_fd> make_pipe(const char* who) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) < 0) throw_errno(std::string(who) + ": pipe()");
    unique_fd ends[2] = {unique_fd(fds[0]), unique_fd(fds[1])};
    for (unique_fd& end : ends) {
        if (end.get() > 2) continue;
        const int moved = ::fcntl(end.get(), F_DUPFD_CLOEXEC, 3);
        if (moved < 0) throw_errno(std::string(who) + ": fcntl(F_DUPFD_CLOEXEC)");
        end.reset(moved);
    }
    return {std::move(ends[0]), std::move(ends[1])};
}

// subprocess's search: each directory of PATH in turn; the first executable regular file
// wins. Not found: ENOENT, or EACCES when one was found but could not be executed.
inline std::string find_program(const std::string& program, const spawn_request& r) {
    if (program.find('/') != std::string::npos) return program;
    std::string path;
    bool have_path = false;
    if (r.env) {
        if (auto it = r.env->find("PATH"); it != r.env->end()) {
            path = it->second;
            have_path = true;
        }
    } else if (const char* p = ::getenv("PATH")) {
        path = p;
        have_path = true;
    }
    if (!have_path) path = "/bin:/usr/bin";  // confstr(_CS_PATH), as os.get_exec_path
    int error = ENOENT;
    std::size_t start = 0;
    for (;;) {
        const std::size_t end = path.find(':', start);
        std::string dir = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
        std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + program;
        struct stat st {};
        if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
            if (::access(candidate.c_str(), X_OK) == 0) return candidate;
            error = EACCES;
        }
        if (end == std::string::npos) break;
        start = end + 1;
    }
    throw_os_error(error, std::string(r.who) + ": " + single_quoted(program));
}

// RAII for the spawn attributes and file actions.
struct spawn_setup {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    bool have_actions = false;
    bool have_attributes = false;
    spawn_setup() = default;
    spawn_setup(const spawn_setup&) = delete;
    spawn_setup& operator=(const spawn_setup&) = delete;
    ~spawn_setup() {
        if (have_actions) posix_spawn_file_actions_destroy(&actions);
        if (have_attributes) posix_spawnattr_destroy(&attributes);
    }
};

inline void check(int rc, const char* who, const char* call) {
    if (rc != 0) throw_os_error(rc, std::string(who) + ": " + call);
}

inline void check_choices(const spawn_request& r) {
    if (r.in.kind == stdio_choice::to_stdout || r.out.kind == stdio_choice::to_stdout)
        throw std::invalid_argument(std::string(r.who) + ": aio::subprocess::std_out can only be given for std_err");
    for (const stdio_choice* c : {&r.in, &r.out, &r.err}) {
        if (c->kind != stdio_choice::descriptor) continue;
        if (c->fd < 0 || ::fcntl(c->fd, F_GETFD) < 0)
            throw_os_error(EBADF, std::string(r.who) + ": descriptor " + std::to_string(c->fd) + " given for the child is not open");
    }
}

// Starts the child. Throws std::invalid_argument for a request that cannot be run as
// given, aio::os_error when the system refuses (the program not found: ENOENT); nothing
// is left behind then — no descriptor, no child.
inline spawned_child spawn(const spawn_request& r) {
    const char* who = r.who;
    if (r.program.empty()) throw std::invalid_argument(std::string(who) + ": the program is empty");
    check_no_nul(r.program, who, "the program");
    for (const std::string& a : r.args) check_no_nul(a, who, "an argument");
    check_choices(r);
    std::vector<std::string> environment;
    if (r.env) {
        environment.reserve(r.env->size());
        for (const auto& [key, value] : *r.env) {
            if (key.empty() || key.find('=') != std::string::npos)
                throw std::invalid_argument(std::string(who) + ": illegal environment variable name " + single_quoted(key));
            check_no_nul(key, who, "an environment variable name");
            check_no_nul(value, who, "an environment variable's value");
            environment.push_back(key + "=" + value);
        }
    }
    if (r.cwd) {
        check_no_nul(r.cwd->native(), who, "the working directory");
        struct stat st {};
        if (::stat(r.cwd->c_str(), &st) < 0) throw_errno(std::string(who) + ": cwd " + single_quoted(r.cwd->native()));
        if (!S_ISDIR(st.st_mode)) throw_os_error(ENOTDIR, std::string(who) + ": cwd " + single_quoted(r.cwd->native()));
    }
    const std::string path = find_program(r.program, r);

    spawned_child child;
    spawn_setup setup;
    check(posix_spawn_file_actions_init(&setup.actions), who, "posix_spawn_file_actions_init");
    setup.have_actions = true;
    check(posix_spawnattr_init(&setup.attributes), who, "posix_spawnattr_init");
    setup.have_attributes = true;

    // The child's ends: closed in the parent when this returns (or throws).
    std::vector<unique_fd> child_ends;
    const stdio_choice* choices[3] = {&r.in, &r.out, &r.err};
    unique_fd* parent_ends[3] = {&child.in, &child.out, &child.err};
    for (int target = 0; target < 3; ++target) {
        const stdio_choice& c = *choices[target];
        switch (c.kind) {
        case stdio_choice::inherit:
            break;
        case stdio_choice::pipe: {
            auto [read_end, write_end] = make_pipe(who);
            unique_fd& mine = target == 0 ? write_end : read_end;
            unique_fd& theirs = target == 0 ? read_end : write_end;
            check(posix_spawn_file_actions_adddup2(&setup.actions, theirs.get(), target), who, "posix_spawn_file_actions_adddup2");
            *parent_ends[target] = std::move(mine);
            child_ends.push_back(std::move(theirs));
            break;
        }
        case stdio_choice::devnull:
            check(posix_spawn_file_actions_addopen(&setup.actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0),
                  who, "posix_spawn_file_actions_addopen");
            break;
        case stdio_choice::to_stdout:
            check(posix_spawn_file_actions_adddup2(&setup.actions, 1, 2), who, "posix_spawn_file_actions_adddup2");
            break;
        case stdio_choice::descriptor: {
            int fd = c.fd;
            if (fd < 3 && fd != target) {  // 0, 1 or 2 may be overwritten before its turn: a copy above 2
                const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
                if (copy < 0) throw_errno(std::string(who) + ": fcntl(F_DUPFD_CLOEXEC)");
                child_ends.emplace_back(copy);
                fd = copy;
            }
            check(posix_spawn_file_actions_adddup2(&setup.actions, fd, target), who, "posix_spawn_file_actions_adddup2");
            break;
        }
        }
    }
    if (r.cwd) check(posix_spawn_file_actions_addchdir_np(&setup.actions, r.cwd->c_str()), who, "posix_spawn_file_actions_addchdir_np");
    check(posix_spawn_file_actions_addclosefrom_np(&setup.actions, 3), who, "posix_spawn_file_actions_addclosefrom_np");

    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (r.new_session) flags |= POSIX_SPAWN_SETSID;
    check(posix_spawnattr_setflags(&setup.attributes, flags), who, "posix_spawnattr_setflags");
    sigset_t mask;
    sigemptyset(&mask);
    check(posix_spawnattr_setsigmask(&setup.attributes, &mask), who, "posix_spawnattr_setsigmask");
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGXFSZ);
    check(posix_spawnattr_setsigdefault(&setup.attributes, &defaults), who, "posix_spawnattr_setsigdefault");

    std::vector<char*> argv;
    argv.reserve(r.args.size() + 2);
    argv.push_back(const_cast<char*>(r.program.c_str()));
    for (const std::string& a : r.args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    if (r.env) {
        envp.reserve(environment.size() + 1);
        for (std::string& e : environment) envp.push_back(e.data());
        envp.push_back(nullptr);
    }

    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, path.c_str(), &setup.actions, &setup.attributes, argv.data(), r.env ? envp.data() : environ);
    if (rc != 0) throw_os_error(rc, std::string(who) + ": " + single_quoted(r.program));
    child.pid = pid;
    child.pidfd.reset(pidfd_open(pid));
    if (!child.pidfd) {  // no pidfd (a kernel before 5.3, no descriptor left): the child cannot be watched
        const int error = errno;
        ::kill(pid, SIGKILL);
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        throw_os_error(error, std::string(who) + ": pidfd_open() for the child " + std::to_string(pid) +
                                  (error == ENOSYS ? " (aio needs Linux 5.3 or later)" : ""));
    }
    return child;
}

}  // namespace aio::detail
