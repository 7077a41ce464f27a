#pragma once
// What the network benchmark's C++ servers share (bench/net_compare.py runs them):
// the fixed response and the command line, PORT [http|echo].

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace netbench {

// Every peer answers with these bytes (nginx adds its own headers).
inline constexpr std::string_view http_response =
    "HTTP/1.1 200 OK\r\n"
    "Server: bench\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 12\r\n"
    "\r\n"
    "Hello world\n";

struct args {
    std::uint16_t port = 0;
    bool echo = false;
};

inline args parse_args(int argc, char** argv, const char* program) {
    args a;
    char* end = nullptr;
    const long port = argc > 1 ? std::strtol(argv[1], &end, 10) : -1;
    const bool mode_ok = argc < 3 || std::strcmp(argv[2], "http") == 0 || std::strcmp(argv[2], "echo") == 0;
    if (argc < 2 || argc > 3 || *end != '\0' || port < 0 || port > 65535 || !mode_ok) {
        std::fprintf(stderr, "usage: %s PORT [http|echo]\n", program);
        std::exit(2);
    }
    a.port = static_cast<std::uint16_t>(port);
    a.echo = argc == 3 && std::strcmp(argv[2], "echo") == 0;
    return a;
}

}  // namespace netbench
