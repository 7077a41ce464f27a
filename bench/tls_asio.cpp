// Standalone asio's side of the TLS benchmark (bench/tls_compare.py): the keep-alive
// HTTPS "hello world" server and the TLS echo server of tls_aio.cpp, written the
// idiomatic asio way — asio::ssl::stream<tcp::socket> over OpenSSL, C++20 coroutines
// (co_spawn, use_awaitable), one coroutine a connection, a single-threaded
// io_context (concurrency hint 1). Each connection: async_handshake, then
// async_read_until "\r\n\r\n" + async_write of the fixed response (https), or
// async_read_some of up to 64 KiB + async_write back (echo), until the client hangs
// up; then async_shutdown (close_notify), its error ignored — as asyncio's and aio's
// close() do.
//
//   tls_asio PORT https|echo CERT KEY
//
// TLS 1.3 only (the harness's clients all speak it). Serves until SIGINT or SIGTERM.

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

#include <asio.hpp>
#include <asio/ssl.hpp>

#include "http_support.hpp"

namespace {

using asio::ip::tcp;
using tls_stream = asio::ssl::stream<tcp::socket>;

asio::awaitable<void> finish(tls_stream& stream) {
    std::error_code ignored;
    co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ignored));
}

asio::awaitable<void> serve_https(tls_stream stream) {
    std::string buffer;
    try {
        co_await stream.async_handshake(asio::ssl::stream_base::server, asio::use_awaitable);
        for (;;) {
            const std::size_t n = co_await asio::async_read_until(stream, asio::dynamic_buffer(buffer), "\r\n\r\n",
                                                                  asio::use_awaitable);
            buffer.erase(0, n);
            co_await asio::async_write(stream, asio::buffer(netbench::http_response.data(), netbench::http_response.size()),
                                       asio::use_awaitable);
        }
    } catch (const std::exception&) {  // EOF, close_notify, a reset: the client is gone
    }
    co_await finish(stream);
}

asio::awaitable<void> serve_echo(tls_stream stream) {
    char data[65536];
    try {
        co_await stream.async_handshake(asio::ssl::stream_base::server, asio::use_awaitable);
        for (;;) {
            const std::size_t n = co_await stream.async_read_some(asio::buffer(data), asio::use_awaitable);
            co_await asio::async_write(stream, asio::buffer(data, n), asio::use_awaitable);
        }
    } catch (const std::exception&) {
    }
    co_await finish(stream);
}

asio::awaitable<void> listen(tcp::acceptor& acceptor, asio::ssl::context& tls, bool echo) {
    for (;;) {
        tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
        socket.set_option(tcp::no_delay(true));
        tls_stream stream(std::move(socket), tls);
        asio::co_spawn(acceptor.get_executor(), echo ? serve_echo(std::move(stream)) : serve_https(std::move(stream)),
                       asio::detached);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5 || (std::strcmp(argv[2], "https") != 0 && std::strcmp(argv[2], "echo") != 0)) {
        std::fprintf(stderr, "usage: tls_asio PORT https|echo CERT KEY\n");
        return 2;
    }
    const bool echo = std::strcmp(argv[2], "echo") == 0;
    try {
        asio::ssl::context tls(asio::ssl::context::tls_server);
        SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_3_VERSION);
        tls.use_certificate_chain_file(argv[3]);
        tls.use_private_key_file(argv[4], asio::ssl::context::pem);

        asio::io_context ctx(1);
        tcp::acceptor acceptor(ctx);
        const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"),
                                     static_cast<unsigned short>(std::atoi(argv[1])));
        acceptor.open(endpoint.protocol());
        acceptor.set_option(tcp::acceptor::reuse_address(true));
        acceptor.bind(endpoint);
        acceptor.listen(1024);
        asio::signal_set signals(ctx, SIGINT, SIGTERM);
        signals.async_wait([&](const std::error_code&, int) { ctx.stop(); });
        std::printf("tls_asio: %s on 127.0.0.1:%u\n", echo ? "echo" : "https", acceptor.local_endpoint().port());
        std::fflush(stdout);
        asio::co_spawn(ctx, listen(acceptor, tls, echo), asio::detached);
        ctx.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tls_asio: %s\n", e.what());
        return 1;
    }
    return 0;
}
