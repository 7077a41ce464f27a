#pragma once
// What the UDP benchmark's C++ peers share (bench/udp_compare.py): the command line
// and the flow's protocol, so that aio and asio play exactly the same game.
//
//   PROGRAM receive COUNT ACK_EVERY          prints "PORT <p>", then "RESULT <n> <seconds>"
//   PROGRAM send PORT COUNT WINDOW ACK_EVERY prints "SENT <n> <seconds>"
//
// The flow: the sender sends COUNT 64-byte datagrams to 127.0.0.1:PORT, their
// sequence number in the first 4 bytes, keeping at most WINDOW of them unacknowledged;
// the receiver acknowledges every ACK_EVERY-th datagram (and the last) with an 8-byte
// datagram holding how many it has received. No datagram can be lost to a full receive
// buffer (the window is far smaller than it), and a lost one would stall the flow: the
// sender gives up after 2 s without an acknowledgement and exits with status 1. The
// receiver's time runs from the first datagram to the last. WINDOW 1 with ACK_EVERY 1
// is a ping-pong.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace udpbench {

constexpr std::size_t datagram_size = 64;
constexpr std::size_t ack_size = 8;

struct args {
    bool receive = false;
    unsigned port = 0;
    std::uint64_t count = 0;
    std::uint64_t window = 1;
    std::uint64_t ack_every = 1;
};

inline args parse(int argc, char** argv) {
    args a;
    const std::string role = argc > 1 ? argv[1] : "";
    if (role == "receive" && argc == 4) {
        a.receive = true;
        a.count = std::strtoull(argv[2], nullptr, 10);
        a.ack_every = std::strtoull(argv[3], nullptr, 10);
    } else if (role == "send" && argc == 6) {
        a.port = static_cast<unsigned>(std::strtoul(argv[2], nullptr, 10));
        a.count = std::strtoull(argv[3], nullptr, 10);
        a.window = std::strtoull(argv[4], nullptr, 10);
        a.ack_every = std::strtoull(argv[5], nullptr, 10);
    } else {
        std::fprintf(stderr, "usage: %s receive COUNT ACK_EVERY | send PORT COUNT WINDOW ACK_EVERY\n", argv[0]);
        std::exit(2);
    }
    if (a.count == 0 || a.window == 0 || a.ack_every == 0) {
        std::fprintf(stderr, "%s: COUNT, WINDOW and ACK_EVERY must be positive\n", argv[0]);
        std::exit(2);
    }
    return a;
}

inline std::uint64_t read_u64(const void* p) {
    std::uint64_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

inline void write_u64(void* p, std::uint64_t v) { std::memcpy(p, &v, sizeof v); }

inline bool ack_due(std::uint64_t received, const args& a) { return received % a.ack_every == 0 || received == a.count; }

using clock = std::chrono::steady_clock;

inline double seconds_since(clock::time_point start) {
    return std::chrono::duration<double>(clock::now() - start).count();
}

}  // namespace udpbench
