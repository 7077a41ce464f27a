// aio's side of the UDP benchmark (bench/udp_compare.py; the protocol and the command
// line: udp_support.hpp): datagram endpoints, written the way an asyncio program is
// ported — a task that awaits recvfrom() and calls sendto().
#include <aio/net/datagram.hpp>
#include <aio/run.hpp>
#include <aio/task.hpp>
#include <aio/wait_for.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

#include "udp_support.hpp"

namespace {

aio::task<int> receive(udpbench::args a) {
    aio::datagram_endpoint ep = co_await aio::create_datagram_endpoint({"127.0.0.1", 0});
    std::printf("PORT %u\n", unsigned{ep.local_address().port()});
    std::fflush(stdout);
    std::uint64_t received = 0;
    udpbench::clock::time_point start;
    char ack[udpbench::ack_size];
    while (received < a.count) {
        auto [data, from] = co_await ep.recvfrom();
        if (received++ == 0) start = udpbench::clock::now();
        if (udpbench::ack_due(received, a)) {
            udpbench::write_u64(ack, received);
            ep.sendto(std::string_view(ack, sizeof ack), from);
        }
    }
    const double elapsed = udpbench::seconds_since(start);
    co_await ep.drain();
    std::printf("RESULT %llu %.6f\n", static_cast<unsigned long long>(received), elapsed);
    co_return 0;
}

aio::task<int> send(udpbench::args a) {
    aio::datagram_endpoint ep = co_await aio::create_datagram_endpoint({}, {"127.0.0.1", static_cast<std::uint16_t>(a.port)});
    std::string datagram(udpbench::datagram_size, 'u');
    std::uint64_t sent = 0, acked = 0;
    const auto start = udpbench::clock::now();
    while (acked < a.count) {
        while (ep.queued() != 0 || sent - acked >= a.window || sent == a.count) {
            std::pair<std::string, aio::socket_address> ack;
            try {
                ack = co_await aio::wait_for(ep.recvfrom(), std::chrono::seconds(2));
            } catch (const aio::timeout_error&) {
                std::fprintf(stderr, "udp_aio: no acknowledgement for 2 s (sent %llu, acknowledged %llu): a datagram was lost\n",
                             static_cast<unsigned long long>(sent), static_cast<unsigned long long>(acked));
                co_return 1;
            }
            const std::uint64_t n = udpbench::read_u64(ack.first.data());
            if (n > acked) acked = n;
            if (acked >= a.count) break;
        }
        if (sent < a.count && sent - acked < a.window) {
            udpbench::write_u64(datagram.data(), sent++);
            ep.send(datagram);
        }
    }
    std::printf("SENT %llu %.6f\n", static_cast<unsigned long long>(sent), udpbench::seconds_since(start));
    co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const udpbench::args a = udpbench::parse(argc, argv);
    try {
        return aio::run(a.receive ? receive(a) : send(a));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "udp_aio: %s\n", e.what());
        return 1;
    }
}
