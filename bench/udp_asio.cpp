// Standalone asio's side of the UDP benchmark (bench/udp_compare.py; the protocol and
// the command line: udp_support.hpp), written the idiomatic asio way for speed:
// completion handlers (no coroutines) on a single-threaded io_context (concurrency
// hint 1), udp::socket::async_receive_from re-armed from its handler, async_send_to
// for every datagram and acknowledgement.
#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include <asio.hpp>

#include "udp_support.hpp"

namespace {

using asio::ip::udp;

struct receiver {
    receiver(udp::socket s, udpbench::args args) : socket(std::move(s)), a(args) {}
    udp::socket socket;
    udpbench::args a;
    std::array<char, 65536> buffer{};
    udp::endpoint from;
    std::array<std::array<char, udpbench::ack_size>, 64> acks{};  // in flight at once: one each
    std::size_t next_ack = 0;
    std::uint64_t received = 0;
    udpbench::clock::time_point start;
    double elapsed = 0;

    void arm() {
        socket.async_receive_from(asio::buffer(buffer), from, [this](const asio::error_code& ec, std::size_t) {
            if (ec) {
                std::fprintf(stderr, "udp_asio: receive: %s\n", ec.message().c_str());
                std::exit(1);
            }
            if (received++ == 0) start = udpbench::clock::now();
            if (udpbench::ack_due(received, a)) {
                auto& ack = acks[next_ack++ % acks.size()];
                udpbench::write_u64(ack.data(), received);
                socket.async_send_to(asio::buffer(ack), from, [](const asio::error_code&, std::size_t) {});
            }
            if (received < a.count) arm();
            else elapsed = udpbench::seconds_since(start);
        });
    }
};

struct sender {
    sender(asio::io_context& io, udpbench::args args, udp::endpoint destination)
        : socket(io, udp::endpoint(udp::v4(), 0)), a(args), to(destination), watchdog(io) {}
    udp::socket socket;
    udpbench::args a;
    udp::endpoint to;
    std::string datagram = std::string(udpbench::datagram_size, 'u');
    std::array<char, 64> ack{};
    udp::endpoint from;
    asio::steady_timer watchdog;
    std::uint64_t sent = 0, acked = 0;
    bool sending = false;

    void pump() {  // sends while the window is open, one async_send_to at a time
        if (sending || sent == a.count || sent - acked >= a.window) return;
        sending = true;
        udpbench::write_u64(datagram.data(), sent++);
        socket.async_send_to(asio::buffer(datagram), to, [this](const asio::error_code& ec, std::size_t) {
            sending = false;
            if (ec) {
                std::fprintf(stderr, "udp_asio: send: %s\n", ec.message().c_str());
                std::exit(1);
            }
            pump();
        });
    }
    void listen() {
        socket.async_receive_from(asio::buffer(ack), from, [this](const asio::error_code& ec, std::size_t) {
            if (ec) {
                std::fprintf(stderr, "udp_asio: receive: %s\n", ec.message().c_str());
                std::exit(1);
            }
            const std::uint64_t n = udpbench::read_u64(ack.data());
            if (n > acked) acked = n;
            if (acked >= a.count) {
                watchdog.cancel();
                return;
            }
            arm_watchdog();
            pump();
            listen();
        });
    }
    void arm_watchdog() {
        watchdog.expires_after(std::chrono::seconds(2));
        watchdog.async_wait([this](const asio::error_code& ec) {
            if (ec) return;  // cancelled, or re-armed
            std::fprintf(stderr, "udp_asio: no acknowledgement for 2 s (sent %llu, acknowledged %llu): a datagram was lost\n",
                         static_cast<unsigned long long>(sent), static_cast<unsigned long long>(acked));
            std::exit(1);
        });
    }
};

}  // namespace

int main(int argc, char** argv) {
    const udpbench::args a = udpbench::parse(argc, argv);
    asio::io_context io(1);
    const auto loopback = asio::ip::make_address("127.0.0.1");
    if (a.receive) {
        receiver r(udp::socket(io, udp::endpoint(loopback, 0)), a);
        std::printf("PORT %u\n", unsigned{r.socket.local_endpoint().port()});
        std::fflush(stdout);
        r.arm();
        io.run();
        std::printf("RESULT %llu %.6f\n", static_cast<unsigned long long>(r.received), r.elapsed);
        return 0;
    }
    sender s(io, a, udp::endpoint(loopback, static_cast<unsigned short>(a.port)));
    s.socket.connect(s.to);
    const auto start = udpbench::clock::now();
    s.arm_watchdog();
    s.listen();
    s.pump();
    io.run();
    std::printf("SENT %llu %.6f\n", static_cast<unsigned long long>(s.sent), udpbench::seconds_since(start));
    return 0;
}
