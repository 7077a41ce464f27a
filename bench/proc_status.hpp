#pragma once
// What /proc/self/status says about this process's memory: the resident set now
// (VmRSS) and its high-water mark (VmHWM). No Google Benchmark, no asio: the
// fresh-process programs (cold_*.cpp) use it too.

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace aio_bench {

// The field `name` ("VmRSS:", say) of /proc/self/status in bytes (it is given in
// KiB), or -1 when it cannot be read.
inline std::int64_t proc_status_bytes(const char* name) {
    std::FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return -1;
    const std::size_t length = std::strlen(name);
    char line[256];
    std::int64_t kib = -1;
    while (std::fgets(line, sizeof line, f)) {
        if (std::strncmp(line, name, length) == 0) {
            long long value = 0;
            if (std::sscanf(line + length, "%lld", &value) == 1) kib = value;
            break;
        }
    }
    std::fclose(f);
    return kib < 0 ? -1 : kib * 1024;
}

// Resident set size of this process, in bytes. Counts pages actually touched, which
// is what a million sleeping tasks cost the machine.
inline std::int64_t vm_rss_bytes() { return proc_status_bytes("VmRSS:"); }

// The largest resident set this program has had since it was exec'd. Unlike
// getrusage's ru_maxrss, it does not start from the RSS of the process that spawned
// it (Linux carries the pre-exec high-water mark into ru_maxrss).
inline std::int64_t vm_hwm_bytes() { return proc_status_bytes("VmHWM:"); }

}  // namespace aio_bench
