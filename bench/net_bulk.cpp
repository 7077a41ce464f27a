// Bulk transfer through one TCP stream over loopback: how close aio's streams come to
// what the kernel gives a pair of blocking threads.
//
//   blocking   a thread send()s, another recv()s: the floor of any event loop here;
//   aio read   a blocking thread sends, an aio loop reads the stream with read(65536),
//              the way an asyncio user writes `while data := await reader.read(65536)`;
//   aio write  an aio loop writes the stream in 256 KiB pieces, each followed by
//              drain(), and a blocking thread receives.
//
// The program's own thread (the aio loop, or the blocking receiver) is pinned to CPU 0
// and the peer thread to CPU 1, when there are two, as net_compare.py pins a server
// and its load apart: left to the scheduler, the two sometimes share a core, and a
// run's figure drops to a quarter.
//
// Each round runs the three in turn, each over a fresh connection; the figures are
// the medians over the rounds, and the ratio of each aio one to the blocking one of
// the same rounds. The sender sends 256 KiB at a time, the receiver takes 64 KiB at a
// time, whichever side is aio's.
//
//   net_bulk [--mib N] [--rounds R] [--only blocking|read|write]
//       1024 MiB and 5 rounds by default; --only runs one of the three (for a profiler)
#include <aio/aio.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {

constexpr std::size_t send_piece = std::size_t{256} << 10;
constexpr std::size_t receive_piece = std::size_t{64} << 10;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "net_bulk: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

// A connected pair of blocking TCP sockets on 127.0.0.1.
std::pair<int, int> tcp_pair() {
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof at;
    if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0 || ::listen(listener, 1) != 0 ||
        ::getsockname(listener, reinterpret_cast<sockaddr*>(&at), &length) != 0)
        fail("listen");
    const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (client < 0 || ::connect(client, reinterpret_cast<sockaddr*>(&at), sizeof at) != 0) fail("connect");
    const int server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    if (server < 0) fail("accept");
    ::close(listener);
    return {client, server};
}

void send_blocking(int fd, std::size_t total) {
    const std::string piece(send_piece, 'x');
    for (std::size_t sent = 0; sent < total;) {
        const ssize_t n = ::send(fd, piece.data(), std::min(piece.size(), total - sent), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail("send");
        sent += static_cast<std::size_t>(n);
    }
    ::shutdown(fd, SHUT_WR);
}

std::size_t receive_blocking(int fd) {
    std::vector<char> buffer(receive_piece);
    std::size_t received = 0;
    for (;;) {
        const ssize_t n = ::recv(fd, buffer.data(), buffer.size(), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) fail("recv");
        if (n == 0) return received;
        received += static_cast<std::size_t>(n);
    }
}

using seconds = std::chrono::duration<double>;

// Pins the calling thread to `cpu`, if the machine has it.
void pin_to(unsigned cpu) {
    if (std::thread::hardware_concurrency() < 2) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
}

seconds blocking_round(std::size_t total) {
    auto [a, b] = tcp_pair();
    const auto start = std::chrono::steady_clock::now();
    std::thread sender([a = a, total] {
        pin_to(1);
        send_blocking(a, total);
    });
    const std::size_t got = receive_blocking(b);
    const seconds took = std::chrono::steady_clock::now() - start;
    sender.join();
    ::close(a);
    ::close(b);
    if (got != total) fail("blocking: short transfer");
    return took;
}

aio::task<std::size_t> read_stream(int fd) {
    auto [reader, writer] = co_await aio::open_connection(aio::socket::adopt(fd));
    std::size_t received = 0;
    for (;;) {
        const std::string data = co_await reader.read(static_cast<std::ptrdiff_t>(receive_piece));
        if (data.empty()) break;
        received += data.size();
    }
    writer.close();
    co_await writer.wait_closed();
    co_return received;
}

seconds aio_read_round(std::size_t total) {
    auto [a, b] = tcp_pair();
    const auto start = std::chrono::steady_clock::now();
    std::thread sender([a = a, total] {
        pin_to(1);
        send_blocking(a, total);
    });
    const std::size_t got = aio::run(read_stream(b));
    const seconds took = std::chrono::steady_clock::now() - start;
    sender.join();
    ::close(a);
    if (got != total) fail("aio read: short transfer");
    return took;
}

aio::task<> write_stream(int fd, std::size_t total) {
    auto [reader, writer] = co_await aio::open_connection(aio::socket::adopt(fd));
    const std::string piece(send_piece, 'x');
    for (std::size_t sent = 0; sent < total; sent += piece.size()) {
        writer.write(std::string_view(piece).substr(0, std::min(piece.size(), total - sent)));
        co_await writer.drain();
    }
    writer.write_eof();
    co_await writer.drain();
    writer.close();
    co_await writer.wait_closed();
}

seconds aio_write_round(std::size_t total) {
    auto [a, b] = tcp_pair();
    std::size_t got = 0;
    const auto start = std::chrono::steady_clock::now();
    std::thread receiver([b = b, &got] {
        pin_to(1);
        got = receive_blocking(b);
    });
    aio::run(write_stream(a, total));
    receiver.join();
    const seconds took = std::chrono::steady_clock::now() - start;
    ::close(b);
    if (got != total) fail("aio write: short transfer");
    return took;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main(int argc, char** argv) {
    long mib = 1024, rounds = 5;
    std::string only;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
            if (only != "blocking" && only != "read" && only != "write") {
                std::fprintf(stderr, "net_bulk: --only takes blocking, read or write, not '%s'\n", only.c_str());
                return 2;
            }
            continue;
        }
        char* end = nullptr;
        long* into = std::strcmp(argv[i], "--mib") == 0 ? &mib : std::strcmp(argv[i], "--rounds") == 0 ? &rounds : nullptr;
        if (!into || i + 1 == argc) {
            std::fprintf(stderr, "usage: net_bulk [--mib N] [--rounds R] [--only blocking|read|write]\n");
            return 2;
        }
        *into = std::strtol(argv[++i], &end, 10);
        if (*end != '\0' || *into < 1 || *into > 65536) {
            std::fprintf(stderr, "net_bulk: %s takes 1 to 65536, not '%s'\n", argv[i - 1], argv[i]);
            return 2;
        }
    }
    pin_to(0);
    const std::size_t total = static_cast<std::size_t>(mib) << 20;
    const double gib = static_cast<double>(total) / (1u << 30);
    if (!only.empty()) {
        for (long r = 0; r < rounds; ++r) {
            const seconds took = only == "blocking" ? blocking_round(total) : only == "read" ? aio_read_round(total) : aio_write_round(total);
            std::printf("%s: %.2f GiB/s\n", only.c_str(), gib / took.count());
        }
        return 0;
    }
    std::vector<double> blocking, reading, writing, read_ratio, write_ratio;
    for (long r = 0; r < rounds; ++r) {
        const double b = gib / blocking_round(total).count();
        const double ar = gib / aio_read_round(total).count();
        const double aw = gib / aio_write_round(total).count();
        blocking.push_back(b);
        reading.push_back(ar);
        writing.push_back(aw);
        read_ratio.push_back(ar / b);
        write_ratio.push_back(aw / b);
        std::fprintf(stderr, "round %ld: blocking %.2f GiB/s, aio read %.2f, aio write %.2f\n", r + 1, b, ar, aw);
    }
    std::printf("%ld MiB through one loopback TCP connection, median of %ld rounds\n", mib, rounds);
    std::printf("  blocking send/recv pair  %6.2f GiB/s\n", median(blocking));
    std::printf("  aio stream reading       %6.2f GiB/s  (%.0f%% of blocking)\n", median(reading), 100 * median(read_ratio));
    std::printf("  aio stream writing       %6.2f GiB/s  (%.0f%% of blocking)\n", median(writing), 100 * median(write_ratio));
}
