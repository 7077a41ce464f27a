// The subprocess benchmark's floor (bench/subprocess_compare.py): no event loop at all,
// posix_spawn and a blocking waitpid(-1), K children in flight, N in all. What no
// library that starts the same children can beat by much: the children's own exec,
// dynamic loading and exit dominate it.
//
//   subprocess_reference [--children N] [--in-flight K] [--program PATH]
//
// Prints one line: {"children": N, "seconds": S, "per_child_us": U}.
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" char** environ;

int main(int argc, char** argv) {
    int children = 1000, in_flight = 64;
    const char* program = "/bin/true";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--children")) children = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--in-flight")) in_flight = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--program")) program = argv[i + 1];
        else return 2;
    }
    char* child_argv[] = {const_cast<char*>(program), nullptr};
    const auto start = std::chrono::steady_clock::now();
    int started = 0, running = 0, failed = 0;
    while (started < children || running > 0) {
        while (started < children && running < in_flight) {
            pid_t pid;
            if (posix_spawn(&pid, program, nullptr, nullptr, child_argv, environ) != 0) return 1;
            ++started;
            ++running;
        }
        int status = 0;
        if (waitpid(-1, &status, 0) > 0) {
            --running;
            failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("{\"children\": %d, \"seconds\": %.6f, \"per_child_us\": %.2f}\n", children, seconds, seconds * 1e6 / children);
    return failed != 0;
}
