// asyncio's TCP echo server (the streams documentation's example), line for line:
// each client's first message (up to 100 bytes) goes back to it, then the connection
// closes. Serves until Ctrl-C.
//
//   echo_server [PORT]     PORT 8888 by default; 0 lets the kernel pick one
#include <aio/aio.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

aio::task<> handle_echo(aio::stream_reader reader, aio::stream_writer writer) {
    const std::string message = co_await reader.read(100);
    const auto addr = std::any_cast<aio::socket_address>(writer.get_extra_info("peername"));
    std::printf("Received '%s' from %s\n", message.c_str(), addr.to_string().c_str());

    std::printf("Send: '%s'\n", message.c_str());
    writer.write(message);
    co_await writer.drain();

    std::printf("Close the connection\n");
    writer.close();
    co_await writer.wait_closed();
}

aio::task<> main_task(std::uint16_t port) {
    aio::server server = co_await aio::start_server(handle_echo, "127.0.0.1", port);
    std::string addrs;
    for (const aio::socket_address& a : server.sockets()) addrs += (addrs.empty() ? "" : ", ") + a.to_string();
    std::printf("Serving on %s\n", addrs.c_str());
    co_await server.serve_forever();  // Ctrl-C cancels it, and it closes the server
}

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // each line as it happens, even into a pipe
    char* end = nullptr;
    const long port = argc > 1 ? std::strtol(argv[1], &end, 10) : 8888;
    if (argc > 2 || (argc == 2 && (*end != '\0' || port < 0 || port > 65535))) {
        std::fprintf(stderr, "usage: echo_server [PORT]\n");
        return 2;
    }
    try {
        aio::run(main_task(static_cast<std::uint16_t>(port)));
    } catch (const aio::keyboard_interrupt&) {  // Ctrl-C: the server has closed
    }
}
