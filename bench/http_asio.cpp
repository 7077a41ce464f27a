// Standalone asio's side of the network benchmark (bench/net_compare.py): the same
// keep-alive HTTP/1.1 "hello world" server and echo server as http_aio.cpp, written
// the idiomatic asio way — C++20 coroutines (asio::awaitable, co_spawn,
// use_awaitable), async_read_until into a dynamic string buffer, async_write of the
// fixed response, one coroutine a connection, on a single-threaded io_context
// (concurrency hint 1). Echo mode: async_read_some of up to 64 KiB, async_write back.
//
//   http_asio PORT [http|echo]
//
// Serves until SIGINT or SIGTERM (an asio::signal_set stops the io_context).

#include <cstdio>
#include <exception>
#include <string>

#include <asio.hpp>

#include "http_support.hpp"

namespace {

using asio::ip::tcp;

asio::awaitable<void> serve_http(tcp::socket socket) {
    std::string buffer;
    try {
        for (;;) {
            const std::size_t n = co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), "\r\n\r\n",
                                                                  asio::use_awaitable);
            buffer.erase(0, n);
            co_await asio::async_write(socket, asio::buffer(netbench::http_response.data(), netbench::http_response.size()),
                                       asio::use_awaitable);
        }
    } catch (const std::exception&) {  // EOF, or a reset: the client is gone
    }
}

asio::awaitable<void> serve_echo(tcp::socket socket) {
    char data[65536];
    try {
        for (;;) {
            const std::size_t n = co_await socket.async_read_some(asio::buffer(data), asio::use_awaitable);
            co_await asio::async_write(socket, asio::buffer(data, n), asio::use_awaitable);
        }
    } catch (const std::exception&) {
    }
}

asio::awaitable<void> listen(tcp::acceptor& acceptor, bool echo) {
    for (;;) {
        tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
        socket.set_option(tcp::no_delay(true));
        asio::co_spawn(acceptor.get_executor(), echo ? serve_echo(std::move(socket)) : serve_http(std::move(socket)),
                       asio::detached);
    }
}

}  // namespace

int main(int argc, char** argv) {
    const netbench::args a = netbench::parse_args(argc, argv, "http_asio");
    try {
        asio::io_context ctx(1);
        tcp::acceptor acceptor(ctx);
        const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), a.port);
        acceptor.open(endpoint.protocol());
        acceptor.set_option(tcp::acceptor::reuse_address(true));
        acceptor.bind(endpoint);
        acceptor.listen(1024);
        asio::signal_set signals(ctx, SIGINT, SIGTERM);
        signals.async_wait([&](const std::error_code&, int) { ctx.stop(); });
        std::printf("http_asio: %s on 127.0.0.1:%u\n", a.echo ? "echo" : "http", acceptor.local_endpoint().port());
        std::fflush(stdout);
        asio::co_spawn(ctx, listen(acceptor, a.echo), asio::detached);
        ctx.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "http_asio: %s\n", e.what());
        return 1;
    }
    return 0;
}
