// The seed's claim made real: "download 100 pages ... each of which takes one second:
// at least 100 seconds one after another; started and awaited together, under one
// second". A small HTTP/1.1 server in this program answers every page after a 1 s
// delay; the client fetches the pages over open_connection, one after another and then
// all at once with gather, and prints how long each way took.
//
//   download [pages]   (100 by default; CI runs it with 5)
#include <aio/aio.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "seconds.hpp"

using namespace std::chrono_literals;

// The slow web server: one second a page, keep-alive.
aio::task<> serve_page(aio::stream_reader reader, aio::stream_writer writer) {
    try {
        for (;;) {
            std::string request = co_await reader.readuntil("\r\n\r\n");
            const auto start = request.find(' ') + 1;
            const std::string path = request.substr(start, request.find(' ', start) - start);
            co_await aio::sleep(1s);
            const std::string body = "<html>page " + path + "</html>\n";
            writer.write("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: " + std::to_string(body.size()) +
                         "\r\n\r\n" + body);
            co_await writer.drain();
        }
    } catch (const aio::incomplete_read_error&) {  // the client hung up
    }
    writer.close();
}

// What a user writes: fetch one page, return its body.
aio::task<std::string> download(std::uint16_t port, int page) {
    auto [reader, writer] = co_await aio::open_connection("127.0.0.1", port);
    writer.write("GET /" + std::to_string(page) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    co_await writer.drain();
    std::string head = co_await reader.readuntil("\r\n\r\n");
    const auto at = head.find("Content-Length: ") + 16;
    std::string body = co_await reader.readexactly(std::stol(head.substr(at)));
    writer.close();
    co_await writer.wait_closed();
    co_return body;
}

aio::task<> main_task(int pages) {
    aio::server server = co_await aio::start_server(serve_page, "127.0.0.1", 0, {.backlog = 1024});
    const std::uint16_t port = server.sockets().at(0).port();

    auto start = std::chrono::steady_clock::now();
    std::size_t bytes = 0;
    for (int i = 0; i < pages; ++i) bytes += (co_await download(port, i)).size();
    std::printf("one after another: %d pages, %zu bytes, in %s seconds\n", pages, bytes,
                python_float(std::round(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count())).c_str());

    start = std::chrono::steady_clock::now();
    std::vector<aio::task<std::string>> all;
    for (int i = 0; i < pages; ++i) all.push_back(download(port, i));
    bytes = 0;
    for (const std::string& body : co_await aio::gather(std::move(all))) bytes += body.size();
    std::printf("all at once: %d pages, %zu bytes, in %.2f seconds\n", pages, bytes,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());

    server.close();
    co_await server.wait_closed();
}

int main(int argc, char** argv) {
    const int pages = argc > 1 ? std::atoi(argv[1]) : 100;
    if (pages <= 0) {
        std::fprintf(stderr, "usage: download [pages > 0]\n");
        return 2;
    }
    aio::run(main_task(pages));
}
