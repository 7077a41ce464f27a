#pragma once
// aio::socket: a socket descriptor that closes itself (Python's socket.socket, as the
// loop's sock_* calls take it). Every socket aio makes is non-blocking and
// close-on-exec; one adopted from elsewhere is made non-blocking.
//
//   aio::socket listener(AF_INET, SOCK_STREAM);
//   listener.set_option(SOL_SOCKET, SO_REUSEADDR, 1);
//   listener.bind(aio::socket_address::ip("127.0.0.1", 0));
//   listener.listen();
//   auto [conn, peer] = co_await loop.sock_accept(listener.fd());
//
// Move-only; close() may be called early, and twice. Failures throw aio::os_error.

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <utility>

#include "../os_error.hpp"
#include "socket_address.hpp"

namespace aio {

class socket {
public:
    socket() noexcept = default;
    // A new socket (socket(2)), non-blocking and close-on-exec.
    socket(int family, int type, int protocol = 0) {
        fd_ = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
        if (fd_ < 0) detail::throw_errno("aio: socket()");
    }
    // Takes ownership of `fd` and makes it non-blocking.
    static socket adopt(int fd) {
        socket s;
        s.fd_ = fd;
        const int flags = ::fcntl(fd, F_GETFL);
        if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)  // s closes it: it was given
            detail::throw_errno("aio: adopt descriptor " + std::to_string(fd));
        return s;
    }
    // Takes ownership of `fd`, already non-blocking and close-on-exec (accept4's).
    static socket own(int fd) noexcept { return socket(fd, owned); }
    // A connected pair of Unix stream sockets (socketpair(2)).
    static std::pair<socket, socket> pair(int type = SOCK_STREAM) {
        int fds[2];
        if (::socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) < 0) detail::throw_errno("aio: socketpair()");
        return {socket(fds[0], owned), socket(fds[1], owned)};
    }

    socket(socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    socket& operator=(socket&& other) noexcept {
        if (this != &other) {
            close();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    socket(const socket&) = delete;
    socket& operator=(const socket&) = delete;
    ~socket() { close(); }

    int fd() const noexcept { return fd_; }
    bool is_open() const noexcept { return fd_ >= 0; }
    // Gives the descriptor up: the caller closes it.
    int release() noexcept { return std::exchange(fd_, -1); }
    void close() noexcept {
        if (fd_ >= 0) ::close(std::exchange(fd_, -1));
    }

    void bind(const socket_address& address) {
        if (::bind(fd_, address.data(), address.size()) < 0) detail::throw_errno("aio: bind to " + address.to_string());
    }
    void listen(int backlog = SOMAXCONN) {
        if (::listen(fd_, backlog) < 0) detail::throw_errno("aio: listen()");
    }
    void set_option(int level, int name, int value) {
        if (::setsockopt(fd_, level, name, &value, sizeof value) < 0) detail::throw_errno("aio: setsockopt()");
    }
    int option(int level, int name) const {
        int value = 0;
        socklen_t length = sizeof value;
        if (::getsockopt(fd_, level, name, &value, &length) < 0) detail::throw_errno("aio: getsockopt()");
        return value;
    }
    void shutdown(int how) {
        if (::shutdown(fd_, how) < 0) detail::throw_errno("aio: shutdown()");
    }
    socket_address local_address() const {
        socket_address a;
        socklen_t length = socket_address::capacity();
        if (::getsockname(fd_, a.data(), &length) < 0) detail::throw_errno("aio: getsockname()");
        a.resize(length);
        return a;
    }
    socket_address peer_address() const {
        socket_address a;
        socklen_t length = socket_address::capacity();
        if (::getpeername(fd_, a.data(), &length) < 0) detail::throw_errno("aio: getpeername()");
        a.resize(length);
        return a;
    }

private:
    enum owned_t { owned };
    socket(int fd, owned_t) noexcept : fd_(fd) {}
    int fd_ = -1;
};

}  // namespace aio
