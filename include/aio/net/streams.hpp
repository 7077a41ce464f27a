#pragma once
// Opening streams (asyncio.open_connection / open_unix_connection).
//
//   auto [reader, writer] = co_await aio::open_connection("127.0.0.1", 8888);
//   writer.write("hello\n");
//   co_await writer.drain();
//   std::string reply = co_await reader.readline();
//
// The host is resolved by aio::getaddrinfo (at once for a numeric one, else on the
// default executor); the addresses are tried in the order the resolver gives, and the
// first that connects wins. When every one fails, the error is the single failure, or
// an aio::os_error "Multiple exceptions: ..." naming each attempt.
//
// Cancellation: the connect in progress is abandoned and its socket closed; no stream
// is made. Servers: aio/net/server.hpp.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../event_loop.hpp"
#include "../os_error.hpp"
#include "../task.hpp"
#include "detail/stream_transport.hpp"
#include "getaddrinfo.hpp"
#include "socket.hpp"
#include "socket_address.hpp"
#include "stream_reader.hpp"
#include "stream_writer.hpp"

namespace aio {

struct connection_options {
    std::size_t limit = detail::stream_transport::default_limit;  // the reader's
    int family = AF_UNSPEC;                                        // AF_INET or AF_INET6 to insist
    std::optional<socket_address> local_address;                   // bind before connecting
};

using stream_pair = std::pair<stream_reader, stream_writer>;

namespace detail {

// A connected socket becomes a stream: its transport, shared by a reader and a writer.
inline stream_pair make_stream(socket s, std::size_t limit) {
    if (limit == 0) throw std::invalid_argument("Limit cannot be <= 0");
    transport_ref reading(stream_transport::open(*running_loop_or_throw("aio::open_connection()"), std::move(s), limit));
    transport_ref writing = reading;
    return {stream_reader(std::move(reading)), stream_writer(std::move(writing))};
}

inline void no_delay(socket& s) {
    const int family = s.local_address().family();
    if (family == AF_INET || family == AF_INET6) s.set_option(IPPROTO_TCP, TCP_NODELAY, 1);
}

// One error for every attempt that failed (asyncio's create_connection).
[[noreturn]] inline void throw_connect_errors(const std::vector<std::exception_ptr>& errors, const std::vector<std::string>& messages) {
    bool same = true;
    for (const std::string& m : messages) same = same && m == messages.front();
    if (errors.size() == 1 || same) std::rethrow_exception(errors.front());
    std::string all;
    for (const std::string& m : messages) all += (all.empty() ? "" : ", ") + m;
    int first_errno = 0;
    try {
        std::rethrow_exception(errors.front());
    } catch (const os_error& e) {
        first_errno = e.error_number();
    } catch (...) {
    }
    throw os_error(first_errno, "Multiple exceptions: " + all);
}

}  // namespace detail

// Connects to `host`:`port` over TCP.
inline task<stream_pair> open_connection(std::string host, std::uint16_t port, connection_options options = {}) {
    if (options.limit == 0) throw std::invalid_argument("Limit cannot be <= 0");
    const std::vector<address_info> addresses =
        co_await getaddrinfo(host, port, {.family = options.family, .type = SOCK_STREAM});
    if (addresses.empty()) throw os_error(0, "aio::open_connection: getaddrinfo(\"" + host + "\") returned empty list");
    std::vector<std::exception_ptr> errors;
    std::vector<std::string> messages;
    event_loop& loop = get_running_loop();
    for (const address_info& a : addresses) {
        try {
            socket s(a.family, SOCK_STREAM, a.protocol);
            if (options.local_address) s.bind(*options.local_address);
            s.set_option(IPPROTO_TCP, TCP_NODELAY, 1);
            co_await loop.sock_connect(s.fd(), a.address);
            co_return detail::make_stream(std::move(s), options.limit);
        } catch (const os_error& e) {
            errors.push_back(std::current_exception());
            messages.emplace_back(e.what());
        }
    }
    detail::throw_connect_errors(errors, messages);
}

// Connects to the Unix socket at `path`.
inline task<stream_pair> open_unix_connection(std::string path, connection_options options = {}) {
    if (options.limit == 0) throw std::invalid_argument("Limit cannot be <= 0");
    const socket_address address = socket_address::unix_path(path);
    socket s(AF_UNIX, SOCK_STREAM);
    co_await get_running_loop().sock_connect(s.fd(), address);
    co_return detail::make_stream(std::move(s), options.limit);
}

}  // namespace aio
