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
// open_connection(socket) makes a stream of a socket the caller connected (asyncio's
// sock= argument): a socket accepted with loop.sock_accept on one loop, say, and
// handed to another.
//
// TLS (asyncio's ssl=): `.ssl = context` with an aio::ssl_context from <aio/tls.hpp>
// (without that header there is nothing to give it); the handshake is over before the
// stream is returned. It fails with the handshake's error (aio::ssl_error,
// aio::ssl_certificate_error), or aio::connection_aborted_error once
// ssl_handshake_timeout (60 s) has passed; the connection is closed then.
//
// Cancellation: the connect or handshake in progress is abandoned and its socket
// closed; no stream is made. Servers: aio/net/server.hpp.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../create_task.hpp"
#include "../event_loop.hpp"
#include "../task_handle.hpp"
#include "../wait.hpp"
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
    std::optional<socket_address> local_address{};                 // bind before connecting
    // Happy Eyeballs (RFC 8305): start the next address this long after the previous
    // one, without waiting for it to fail (aiohttp uses 250 ms); the first to connect
    // wins and the others are cancelled. Unset: one address after another.
    std::optional<std::chrono::nanoseconds> happy_eyeballs_delay{};
    // How many addresses of the first family go before the families alternate (RFC
    // 8305's "First Address Family Count"); 0: 1 with happy_eyeballs_delay, else the
    // resolver's order is kept.
    int interleave = 0;
    // TLS: an aio::ssl_context (aio/tls.hpp), which must outlive the call; empty:
    // plain TCP. (A reference and a view, not owners: every member is trivially
    // destructible, because g++ 12 destroys a braced temporary twice when it is an
    // argument inside a co_await expression, as `{.ssl = ctx}` is.)
    detail::tls_ref ssl{};
    // The name the server's certificate must match, sent as SNI; unset: the host
    // (open_unix_connection and a connected socket need it set; "" sends none). Read
    // when the call starts.
    std::optional<std::string_view> server_hostname{};
    std::optional<std::chrono::nanoseconds> ssl_handshake_timeout{};  // 60 s unless set
    std::optional<std::chrono::nanoseconds> ssl_shutdown_timeout{};   // 30 s unless set (close_notify)
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

// A connected socket becomes a TLS stream once its handshake is over.
inline task<stream_pair> make_tls_stream(socket s, std::size_t limit, tls_ref ssl, layer_settings settings) {
    transport_ref reading(stream_transport::open(*running_loop_or_throw("aio::open_connection()"), std::move(s), limit));
    co_await start_layer(reading, ssl, std::move(settings));
    transport_ref writing = reading;
    co_return stream_pair{stream_reader(std::move(reading)), stream_writer(std::move(writing))};
}

inline layer_settings client_tls_settings(const connection_options& o, const std::string* host, const char* who) {
    if (o.ssl && !o.server_hostname && !host)
        throw std::invalid_argument(std::string(who) + ": server_hostname is required with ssl (there is no host to take it from)");
    std::optional<std::string_view> name = o.server_hostname;
    if (o.ssl && !name) name = *host;
    return tls_settings(o.ssl, false, name, o.ssl_handshake_timeout, o.ssl_shutdown_timeout);
}

// What a stream or a server is made of: an open stream socket (SOCK_STREAM).
inline void check_stream_socket(const socket& s, const char* who) {
    if (!s.is_open()) throw std::invalid_argument(std::string(who) + ": the socket is closed");
    if (s.option(SOL_SOCKET, SO_TYPE) != SOCK_STREAM) throw std::invalid_argument(std::string(who) + ": a SOCK_STREAM socket is required");
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

// asyncio's _interleave_addrinfos: the first family's first `first` - 1 addresses,
// then one of each family in turn (so `first` of the first family lead).
inline std::vector<address_info> interleave(const std::vector<address_info>& addresses, int first) {
    std::vector<std::vector<const address_info*>> families;
    for (const address_info& a : addresses) {
        auto it = std::find_if(families.begin(), families.end(), [&](const auto& f) { return f.front()->family == a.family; });
        if (it == families.end()) families.push_back({&a});
        else it->push_back(&a);
    }
    std::vector<address_info> out;
    std::vector<std::size_t> taken(families.size(), 0);
    for (; taken[0] < families[0].size() && taken[0] + 1 < static_cast<std::size_t>(first); ++taken[0]) out.push_back(*families[0][taken[0]]);
    for (bool more = true; more;) {
        more = false;
        for (std::size_t f = 0; f < families.size(); ++f)
            if (taken[f] < families[f].size()) {
                out.push_back(*families[f][taken[f]++]);
                more = true;
            }
    }
    return out;
}

inline task<socket> connect_to(address_info a, std::optional<socket_address> local) {
    socket s(a.family, SOCK_STREAM, a.protocol);
    if (local) s.bind(*local);
    s.set_option(IPPROTO_TCP, TCP_NODELAY, 1);
    co_await get_running_loop().sock_connect(s.fd(), a.address);
    co_return s;
}

inline std::string message_of(const std::exception_ptr& e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "an unknown error";
    }
}

// The staggered race (asyncio's staggered.staggered_race): a new attempt starts when
// the last one fails or `delay` has passed, whichever comes first.
inline task<socket> race(std::vector<address_info> addresses, std::optional<socket_address> local,
                         std::chrono::nanoseconds delay) {
    std::vector<task_handle<socket>> racing;
    struct cancel_the_rest {  // however the race ends, no attempt outlives it
        std::vector<task_handle<socket>>& racing;
        ~cancel_the_rest() {
            for (auto& h : racing) h.cancel();
        }
    } guard{racing};
    std::vector<std::exception_ptr> errors;
    std::vector<std::string> messages;
    std::size_t next = 0;
    racing.push_back(create_task(connect_to(addresses[next++], local)));
    while (!racing.empty()) {
        // Not a ?: of two co_awaits: g++ 12 destroys the result of one of them early.
        wait_result<task_handle<socket>> r;
        if (next < addresses.size()) r = co_await wait(racing, first_completed, delay);
        else r = co_await wait(racing, first_completed);
        bool failed = false;
        for (task_handle<socket>& h : r.done) {
            if (std::exception_ptr e = h.exception()) {
                errors.push_back(e);
                messages.push_back(message_of(e));
                failed = true;
                continue;
            }
            socket winner = co_await h;
            racing = std::move(r.pending);
            for (auto& loser : racing) loser.cancel();
            if (!racing.empty()) (void)co_await wait(racing);  // their sockets close
            racing.clear();
            co_return winner;
        }
        racing = std::move(r.pending);
        if (next < addresses.size() && (failed || r.done.empty())) racing.push_back(create_task(connect_to(addresses[next++], local)));
    }
    throw_connect_errors(errors, messages);
}

}  // namespace detail

// Connects to `host`:`port` over TCP.
inline task<stream_pair> open_connection(std::string host, std::uint16_t port, connection_options options = {}) {
    if (options.limit == 0) throw std::invalid_argument("Limit cannot be <= 0");
    const detail::layer_settings tls = detail::client_tls_settings(options, &host, "aio::open_connection");
    const std::vector<address_info> addresses =
        co_await getaddrinfo(host, port, {.family = options.family, .type = SOCK_STREAM});
    if (addresses.empty()) throw os_error(0, "aio::open_connection: getaddrinfo(\"" + host + "\") returned empty list");
    if (options.happy_eyeballs_delay) {
        std::vector<address_info> order = detail::interleave(addresses, options.interleave ? options.interleave : 1);
        socket s = co_await detail::race(std::move(order), options.local_address, *options.happy_eyeballs_delay);
        if (options.ssl) co_return co_await detail::make_tls_stream(std::move(s), options.limit, options.ssl, tls);
        co_return detail::make_stream(std::move(s), options.limit);
    }
    const std::vector<address_info> order = options.interleave ? detail::interleave(addresses, options.interleave) : addresses;
    std::vector<std::exception_ptr> errors;
    std::vector<std::string> messages;
    event_loop& loop = get_running_loop();
    std::optional<socket> connected;  // the handshake's errors are not a connect's
    for (const address_info& a : order) {
        try {
            socket s(a.family, SOCK_STREAM, a.protocol);
            if (options.local_address) s.bind(*options.local_address);
            s.set_option(IPPROTO_TCP, TCP_NODELAY, 1);
            co_await loop.sock_connect(s.fd(), a.address);
            if (!options.ssl) co_return detail::make_stream(std::move(s), options.limit);
            connected.emplace(std::move(s));
            break;
        } catch (const os_error& e) {
            errors.push_back(std::current_exception());
            messages.emplace_back(e.what());
        }
    }
    if (!connected) detail::throw_connect_errors(errors, messages);
    co_return co_await detail::make_tls_stream(std::move(*connected), options.limit, options.ssl, tls);
}

// A stream of a socket already connected, TCP or Unix (asyncio's
// open_connection(sock=...)); the stream owns it. Only `limit` and the TLS options
// apply (with `ssl`, server_hostname must be set): the options about connecting are
// refused.
inline task<stream_pair> open_connection(socket connected, connection_options options = {}) {
    if (options.limit == 0) throw std::invalid_argument("Limit cannot be <= 0");
    detail::check_stream_socket(connected, "aio::open_connection");
    if (options.family != AF_UNSPEC || options.local_address || options.happy_eyeballs_delay || options.interleave != 0)
        throw std::invalid_argument("aio::open_connection: family, local_address, happy_eyeballs_delay and interleave "
                                    "cannot be given with a connected socket");
    const detail::layer_settings tls = detail::client_tls_settings(options, nullptr, "aio::open_connection");
    (void)connected.peer_address();  // throws os_error (ENOTCONN) for one that is not connected
    detail::no_delay(connected);
    if (options.ssl) co_return co_await detail::make_tls_stream(std::move(connected), options.limit, options.ssl, tls);
    co_return detail::make_stream(std::move(connected), options.limit);
}

// Connects to the Unix socket at `path`.
inline task<stream_pair> open_unix_connection(std::string path, connection_options options = {}) {
    if (options.limit == 0) throw std::invalid_argument("Limit cannot be <= 0");
    const detail::layer_settings tls = detail::client_tls_settings(options, nullptr, "aio::open_unix_connection");
    const socket_address address = socket_address::unix_path(path);
    socket s(AF_UNIX, SOCK_STREAM);
    co_await get_running_loop().sock_connect(s.fd(), address);
    if (options.ssl) co_return co_await detail::make_tls_stream(std::move(s), options.limit, options.ssl, tls);
    co_return detail::make_stream(std::move(s), options.limit);
}

}  // namespace aio
