// aio's side of the network benchmark (bench/net_compare.py): a keep-alive HTTP/1.1
// "hello world" server and an echo server on aio's streams, written the way an
// asyncio user would port
//
//     async def handle(reader, writer):
//         try:
//             while True:
//                 await reader.readuntil(b"\r\n\r\n")
//                 writer.write(RESPONSE)
//                 await writer.drain()
//         except (asyncio.IncompleteReadError, ConnectionError):
//             pass
//         writer.close()
//
// line for line: one task a connection, the request head read with readuntil (the
// request itself is not looked at: wrk sends GETs without a body), a fixed response
// written, drain() (which returns at once below the high-water mark), until the
// client hangs up. Echo mode reads with read(65536) and writes back what came.
//
//   http_aio PORT [http|echo]
//
// Listens on 127.0.0.1:PORT and serves until SIGINT (aio::run cancels the main task,
// serve_forever closes the server) or SIGTERM.

#include <aio/aio.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "http_support.hpp"

namespace {

aio::task<> serve_http(aio::stream_reader reader, aio::stream_writer writer) {
    try {
        for (;;) {
            co_await reader.readuntil("\r\n\r\n");
            writer.write(netbench::http_response);
            co_await writer.drain();
        }
    } catch (const aio::incomplete_read_error&) {  // the client hung up
    } catch (const aio::connection_error&) {      // ... or reset the connection
    }
    writer.close();
}

aio::task<> serve_echo(aio::stream_reader reader, aio::stream_writer writer) {
    try {
        for (;;) {
            std::string data = co_await reader.read(65536);
            if (data.empty()) break;  // EOF
            writer.write(data);
            co_await writer.drain();
        }
    } catch (const aio::connection_error&) {
    }
    writer.close();
}

aio::task<> main_task(std::uint16_t port, bool echo) {
    aio::server server = co_await aio::start_server(echo ? serve_echo : serve_http, "127.0.0.1", port, {.backlog = 1024});
    std::printf("http_aio: %s on 127.0.0.1:%u\n", echo ? "echo" : "http", server.sockets().at(0).port());
    std::fflush(stdout);
    co_await server.serve_forever();
}

}  // namespace

int main(int argc, char** argv) {
    const netbench::args a = netbench::parse_args(argc, argv, "http_aio");
    try {
        aio::run(main_task(a.port, a.echo));
    } catch (const aio::keyboard_interrupt&) {
        return 0;
    }
    return 0;
}
