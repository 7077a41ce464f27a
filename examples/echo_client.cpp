// asyncio's TCP echo client (the streams documentation's example), line for line:
// sends a message to echo_server and prints what comes back.
//
//   echo_client [PORT [MESSAGE]]     PORT 8888 and MESSAGE "Hello World!" by default
#include <aio/aio.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

aio::task<> tcp_echo_client(std::uint16_t port, std::string message) {
    auto [reader, writer] = co_await aio::open_connection("127.0.0.1", port);

    std::printf("Send: '%s'\n", message.c_str());
    writer.write(message);
    co_await writer.drain();

    const std::string data = co_await reader.read(100);
    std::printf("Received: '%s'\n", data.c_str());

    std::printf("Close the connection\n");
    writer.close();
    co_await writer.wait_closed();
}

}  // namespace

int main(int argc, char** argv) {
    char* end = nullptr;
    const long port = argc > 1 ? std::strtol(argv[1], &end, 10) : 8888;
    if (argc > 3 || (argc > 1 && (*end != '\0' || port <= 0 || port > 65535))) {
        std::fprintf(stderr, "usage: echo_client [PORT [MESSAGE]]\n");
        return 2;
    }
    try {
        aio::run(tcp_echo_client(static_cast<std::uint16_t>(port), argc > 2 ? argv[2] : "Hello World!"));
    } catch (const aio::os_error& e) {  // nobody listening, say
        std::fprintf(stderr, "echo_client: %s\n", e.what());
        return 1;
    }
}
