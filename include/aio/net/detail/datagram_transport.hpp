#pragma once
// A datagram socket inside the loop: asyncio's _SelectorDatagramTransport and the
// protocol that would collect its datagrams, in one object (aio::datagram_endpoint's).
//
// The reactor's side, as the stream transport's (stream_transport.hpp):
// - The socket is registered once for its life, edge-triggered, for both directions;
//   the transport remembers what the last edge said until a system call says
//   otherwise.
// - Receiving happens in the transport's step, which an edge queues (rule 4), whether
//   or not anyone waits: recvmmsg(2) takes up to `batch` datagrams a call into the
//   thread's scratch block, and each is appended to the queue of received datagrams.
//   A call that brings fewer than asked has drained the socket (every later arrival
//   is a new edge), unless an error came with the edge: the kernel reports a pending
//   error before the datagrams behind it, so one more call fetches it. A step takes
//   `read_budget` datagrams at most, then queues itself behind the others.
// - Errors the socket reports (an ICMP "port unreachable" on a connected socket:
//   ECONNREFUSED; EMSGSIZE on a send) are asyncio's error_received: each takes its
//   place in the queue, in arrival order, and the receive that reaches it throws it.
//   The endpoint stays usable. Only errors that say the descriptor itself is unusable
//   (EBADF, ENOTSOCK, EFAULT, EINVAL) lose the endpoint.
// - The queue is bounded: once it holds more than `queue_limit` bytes (payloads plus
//   `record_overhead` each), receiving pauses, and resumes when receives bring it to
//   half. Meanwhile datagrams wait in the kernel's receive buffer (SO_RCVBUF), which
//   drops new ones when it is full, as it does for any slow reader. No datagram the
//   transport has taken from the kernel is ever dropped.
// - Sending is tried at once; a datagram the kernel refuses with EAGAIN is queued
//   (copied), with the later ones behind it, and goes when the socket says it is
//   writable again. An unconnected Unix socket whose peer's queue is full gets EAGAIN
//   and no writable edge afterwards (Linux wakes only connected senders): such a
//   queue is retried on a timer, 1 ms doubling to 64 ms.
//
// What the endpoint waits on are aio::events: datagram arrived, writing may resume,
// closed. No user code ever runs inside the step.
//
// Lifetime: one reference per handle and per operation in progress. When the last
// goes, a transport still open is closed (its queued datagrams sent first); one that
// still has datagrams to send owns itself until they have gone or the loop closes. A
// closing loop aborts every transport it has.

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "../../detail/io_node.hpp"
#include "../../detail/loop_core.hpp"
#include "../../errors.hpp"
#include "../../event.hpp"
#include "../../event_loop.hpp"
#include "../../handle.hpp"
#include "../../os_error.hpp"
#include "../socket.hpp"
#include "../socket_address.hpp"
#include "byte_buffer.hpp"

namespace aio::detail {

class datagram_transport final : io_node, io_owner {
public:
    static constexpr std::size_t default_queue_limit = std::size_t{256} << 10;
    static constexpr std::size_t record_overhead = 64;  // what one queued datagram is counted as, beyond its bytes
    static constexpr std::size_t header_size = 8;       // asyncio's per datagram in get_write_buffer_size()
    static constexpr std::size_t default_high_water = std::size_t{64} << 10;
    static constexpr int read_budget = 64;    // datagrams a step may take
    static constexpr int write_budget = 256;  // datagrams a step may send from the queue
    static constexpr int batch = 16;          // datagrams a recvmmsg may bring
    // Room for one datagram: the largest UDP payload fits in 64 KiB; a Unix datagram
    // gets asyncio's max_size, 256 KiB (a longer one is cut, as asyncio's is).
    static constexpr std::size_t ip_slot = std::size_t{64} << 10;
    static constexpr std::size_t unix_slot = std::size_t{256} << 10;
    static constexpr std::size_t scratch_size = ip_slot * batch;

    // Registers `s` with the loop: one reference, the caller's. `remote`: the address
    // every datagram goes to (asyncio's remote_addr); `connected`: the socket is
    // connected to it (false with allow_broadcast, which asyncio does not connect).
    static datagram_transport* open(loop_core& loop, socket s, std::optional<socket_address> remote, bool connected,
                                    std::size_t queue_limit) {
        auto* t = new datagram_transport(loop, std::move(s), std::move(remote), connected, queue_limit);
        try {
            loop.add_io(t->fd_.fd(), t, io_readable | io_writable | io_edge);
        } catch (...) {
            delete t;
            throw;
        }
        t->registered_ = true;
        loop.io_owners.push_back(t);
        return t;
    }

    void add_ref() noexcept { ++refs_; }
    void release() noexcept {
        if (--refs_ != 0) return;
        if (!lost_) {
            close();
            if (!lost_) {  // datagrams still to send: it owns itself until then
                orphaned_ = true;
                return;
            }
        }
        delete this;
    }

    // --- receiving

    bool has_queued() const noexcept { return !in_.empty(); }
    std::size_t queued_datagrams() const noexcept { return in_count_; }

    // The oldest received datagram, out of the queue; throws (and drops) an error that
    // came in its place. Only when has_queued().
    std::pair<std::string, socket_address> pop() {
        in_header h;
        std::memcpy(&h, in_.view().data(), sizeof h);
        if (h.address_length == error_record) {
            in_.consume(sizeof h);
            std::exception_ptr e = std::move(errors_.front());
            errors_.pop_front();
            taken(0);
            std::rethrow_exception(e);
        }
        const char* at = in_.view().data() + sizeof h;
        std::pair<std::string, socket_address> out(std::string(at + h.address_length, h.size),
                                                   socket_address(reinterpret_cast<const sockaddr*>(at), h.address_length));
        in_.consume(sizeof h + h.address_length + h.size);
        taken(h.size);
        return out;
    }

    // Before a receiver waits: the next arrival wakes it (and a paused queue, empty
    // now, takes datagrams again).
    void before_wait() noexcept {
        if (paused_) resume_reading();
        data_.clear();
    }
    event& data_arrived() noexcept { return data_; }
    // What lost the endpoint, when it was an error (null after close() or abort()).
    const std::exception_ptr& fatal_error() const noexcept { return fatal_; }

    // --- sending

    // `to` null: the endpoint's remote address. Never waits. Errors the kernel gives
    // go to the receive queue (error_received); after the endpoint is lost the
    // datagram is dropped, as asyncio's transport drops it.
    void sendto(std::string_view data, const socket_address* to) {
        if (remote_) {
            if (to && !(*to == *remote_))
                throw std::invalid_argument("Invalid address: must be None or " + remote_->to_string());
            to = connected_ ? nullptr : &*remote_;
        } else if (!to) {
            throw std::invalid_argument("aio::datagram_endpoint: no address to send to: the endpoint has no remote "
                                        "address (give one: sendto(data, address))");
        }
        if (to && to->empty()) throw std::invalid_argument("aio::datagram_endpoint::sendto(): an empty address");
        if (data.size() > UINT32_MAX) throw std::invalid_argument("aio::datagram_endpoint::sendto(): datagram too long");
        if (lost_) return;
        if (out_.empty()) {
            if (send_one(data, to)) return;
        }
        out_header h{static_cast<std::uint32_t>(data.size()), to ? static_cast<std::uint32_t>(to->size()) : 0};
        char* room = out_.prepare(sizeof h + h.address_length + h.size);
        std::memcpy(room, &h, sizeof h);
        if (to) std::memcpy(room + sizeof h, to->data(), h.address_length);
        if (h.size) std::memcpy(room + sizeof h + h.address_length, data.data(), h.size);
        out_.commit(sizeof h + h.address_length + h.size);
        out_size_ += data.size() + header_size;
        ++out_count_;
        if (!writing_paused_ && out_size_ > high_water_) {
            writing_paused_ = true;
            drain_.clear();
        }
        if (!writable_) arm_retry();
    }

    // Stops receiving, sends what is queued, then closes the socket.
    void close() noexcept {
        if (closing_ || lost_) return;
        closing_ = true;
        if (out_.empty()) lose(nullptr);
    }
    // Closes now; what is queued to send is dropped.
    void abort() noexcept {
        closing_ = true;
        lose(nullptr);
    }
    bool is_closing() const noexcept { return closing_ || lost_; }
    bool lost() const noexcept { return lost_; }
    bool writing_paused() const noexcept { return writing_paused_; }
    event& drained() noexcept { return drain_; }
    event& closed() noexcept { return closed_; }
    std::size_t write_buffer_size() const noexcept { return out_size_; }
    std::size_t high_water() const noexcept { return high_water_; }
    std::size_t low_water() const noexcept { return low_water_; }
    void set_write_buffer_limits(std::size_t high, std::size_t low) {
        if (low > high)
            throw std::invalid_argument("aio: high (" + std::to_string(high) + ") must be >= low (" +
                                        std::to_string(low) + ")");
        high_water_ = high;
        low_water_ = low;
        if (!writing_paused_ && out_size_ > high_water_) {
            writing_paused_ = true;
            drain_.clear();
        } else if (writing_paused_ && out_size_ <= low_water_) {
            resume_writing();
        }
    }

    int fd() const noexcept { return fd_.fd(); }
    // Where the socket is bound: asked again while it is open (an unbound socket is
    // bound by its first send), the last answer once it is closed.
    const socket_address& local() const noexcept {
        if (fd_.is_open()) {
            try {
                local_ = fd_.local_address();
            } catch (const os_error&) {
            }
        }
        return local_;
    }
    // The address datagrams go to when none is given (asyncio's remote_addr).
    const std::optional<socket_address>& remote() const noexcept { return remote_; }
    bool connected() const noexcept { return connected_; }

private:
    struct in_header {
        std::uint32_t size;
        std::uint32_t address_length;  // error_record: an error in the datagram's place
    };
    struct out_header {
        std::uint32_t size;
        std::uint32_t address_length;  // 0: to the connected peer
    };
    static constexpr std::uint32_t error_record = UINT32_MAX;

    datagram_transport(loop_core& loop, socket s, std::optional<socket_address> remote, bool connected, std::size_t limit)
        : loop_(&loop), fd_(std::move(s)), remote_(std::move(remote)), queue_limit_(limit), connected_(connected) {
        run = step;
        loop_closing = on_loop_closing;
        local_ = fd_.local_address();
        unix_ = local_.family() == AF_UNIX;
    }
    ~datagram_transport() {
        lose(nullptr);
        if (links.prev) loop_->io_owners.unlink(this);
    }

    static void step(ready_item* item) noexcept {
        auto& t = static_cast<datagram_transport&>(static_cast<io_node&>(*item));
        const std::uint32_t events = std::exchange(t.events, 0);
        if (events & (io_readable | io_error)) t.readable_ = true;
        if (events & io_error) t.error_edge_ = true;
        if (events & (io_writable | io_error)) t.writable_ = true;
        if (t.lost_) return;
        if (t.writable_ && !t.out_.empty()) t.flush();
        if (!t.lost_ && t.readable_ && !t.paused_ && !t.closing_) t.read_ready();
        if (t.lost_ && t.orphaned_) delete &t;
    }

    // The thread's receiving block: the datagrams of one recvmmsg land here before
    // they are copied into a queue. Made on first use (null without memory for it).
    struct scratch_block {
        std::unique_ptr<char[]> bytes;
        mmsghdr messages[batch];
        iovec slices[batch];
        sockaddr_storage names[batch];
    };
    static scratch_block* scratch() noexcept {
        static thread_local std::unique_ptr<scratch_block> block;
        if (!block) {
            block.reset(new (std::nothrow) scratch_block);
            if (block) block->bytes.reset(new (std::nothrow) char[scratch_size]);
            if (block && !block->bytes) block.reset();
        }
        return block.get();
    }

    void read_ready() noexcept {
        scratch_block* s = scratch();
        if (!s) {  // no memory at all: the endpoint cannot go on
            lose(std::make_exception_ptr(std::bad_alloc()));
            return;
        }
        const std::size_t slot = unix_ ? unix_slot : ip_slot;
        const int slots = static_cast<int>(scratch_size / slot);
        bool arrived = false;
        int count = 0;
        int last_error = 0;
        while (readable_ && !paused_) {
            if (count >= read_budget) {  // still readable: the others first
                if (queued_at == not_queued) loop_->push(this);
                break;
            }
            const int want = std::min(slots, read_budget - count);
            for (int i = 0; i < want; ++i) {
                s->slices[i] = {s->bytes.get() + static_cast<std::size_t>(i) * slot, slot};
                s->messages[i].msg_hdr = {};
                s->messages[i].msg_hdr.msg_name = &s->names[i];
                s->messages[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
                s->messages[i].msg_hdr.msg_iov = &s->slices[i];
                s->messages[i].msg_hdr.msg_iovlen = 1;
                s->messages[i].msg_len = 0;
            }
            const int n = ::recvmmsg(fd_.fd(), s->messages, static_cast<unsigned>(want), MSG_DONTWAIT, nullptr);
            if (n > 0) {
                for (int i = 0; i < n; ++i) {
                    const mmsghdr& m = s->messages[i];
                    if (!queue(std::string_view(static_cast<const char*>(m.msg_hdr.msg_iov->iov_base), m.msg_len),
                               m.msg_hdr.msg_name, m.msg_hdr.msg_namelen))
                        return;  // no memory: lost
                }
                count += n;
                arrived = true;
                last_error = 0;
                // Fewer than asked: the socket is drained, unless an error edge came
                // (the error may be what cut the call short; the next call brings it).
                if (n < want && !error_edge_) readable_ = false;
            } else if (errno == EINTR) {
                continue;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                readable_ = false;
                error_edge_ = false;
            } else {
                const int err = errno;
                if (fatal(err)) {
                    fail(err, "recvmmsg");
                    return;
                }
                error_edge_ = false;
                if (err == last_error) readable_ = false;  // the same error twice: wait for the next edge
                last_error = err;
                if (!received_error(err, "recvfrom")) return;
                ++count;
                arrived = true;
            }
            if (in_bytes_ > queue_limit_) paused_ = true;
        }
        if (arrived) data_.set();
    }

    // Appends a datagram to the receive queue; false when there was no memory for it
    // (the endpoint is lost then).
    bool queue(std::string_view bytes, const void* name, socklen_t name_length) noexcept {
        in_header h{static_cast<std::uint32_t>(bytes.size()), static_cast<std::uint32_t>(name_length)};
        try {
            char* room = in_.prepare(sizeof h + name_length + bytes.size());
            std::memcpy(room, &h, sizeof h);
            if (name_length) std::memcpy(room + sizeof h, name, name_length);
            if (!bytes.empty()) std::memcpy(room + sizeof h + name_length, bytes.data(), bytes.size());
            in_.commit(sizeof h + name_length + bytes.size());
        } catch (...) {
            lose(std::current_exception());
            return false;
        }
        in_bytes_ += bytes.size() + record_overhead;
        ++in_count_;
        return true;
    }

    // asyncio's error_received: the error takes a datagram's place in the queue.
    bool received_error(int err, const char* call) noexcept {
        try {
            std::exception_ptr e;
            try {
                throw_os_error(err, std::string("aio: ") + call + " on a datagram endpoint at " + local_.to_string());
            } catch (const os_error&) {
                e = std::current_exception();
            }
            errors_.push_back(std::move(e));
            const in_header h{0, error_record};
            try {
                in_.append(std::string_view(reinterpret_cast<const char*>(&h), sizeof h));
            } catch (...) {
                errors_.pop_back();
                throw;
            }
        } catch (...) {
            lose(std::current_exception());
            return false;
        }
        in_bytes_ += record_overhead;
        ++in_count_;
        data_.set();
        return true;
    }

    void taken(std::size_t size) noexcept {
        in_bytes_ -= size + record_overhead;
        --in_count_;
        if (paused_ && in_bytes_ <= queue_limit_ / 2) resume_reading();
    }

    void resume_reading() noexcept {
        paused_ = false;
        if (readable_ && !lost_ && !closing_ && queued_at == not_queued) loop_->push(this);
    }

    // Errors that say the descriptor itself is unusable: the endpoint is lost.
    static bool fatal(int err) noexcept { return err == EBADF || err == ENOTSOCK || err == EFAULT || err == EINVAL; }

    // Sends one datagram now; true when the kernel took it or refused it for good
    // (the error queued, or the endpoint lost), false when it would block.
    bool send_one(std::string_view data, const socket_address* to) noexcept {
        for (;;) {
            const ssize_t n = to ? ::sendto(fd_.fd(), data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL, to->data(), to->size())
                                 : ::send(fd_.fd(), data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n >= 0) {
                backoff_ms_ = 0;
                return true;
            }
            const int err = errno;
            if (err == EINTR) continue;
            if (err == EAGAIN || err == EWOULDBLOCK) {
                writable_ = false;
                return false;
            }
            if (err == EBADF || err == ENOTSOCK) fail(err, "sendto");
            else received_error(err, "sendto");
            return true;
        }
    }

    void flush() noexcept {
        int sent = 0;
        while (!out_.empty() && writable_ && !lost_) {
            if (sent++ == write_budget) {  // more to send: the others first
                if (queued_at == not_queued) loop_->push(this);
                break;
            }
            out_header h;
            std::memcpy(&h, out_.view().data(), sizeof h);
            socket_address to;
            if (h.address_length) to = socket_address(reinterpret_cast<const sockaddr*>(out_.view().data() + sizeof h), h.address_length);
            const std::string_view data = out_.view().substr(sizeof h + h.address_length, h.size);
            if (!send_one(data, h.address_length ? &to : nullptr)) break;
            if (lost_) return;
            out_.consume(sizeof h + h.address_length + h.size);
            out_size_ -= h.size + header_size;
            --out_count_;
        }
        if (lost_) return;
        if (writing_paused_ && out_size_ <= low_water_) resume_writing();
        if (out_.empty()) {
            out_.release();
            if (closing_) lose(nullptr);
        } else if (!writable_) {
            arm_retry();
        }
    }

    // An unconnected Unix socket refused for its peer's full queue gets no writable
    // edge when the peer reads: the queue is tried again on a timer instead.
    void arm_retry() noexcept {
        if (!unix_ || connected_ || retry_ || lost_) return;
        backoff_ms_ = backoff_ms_ ? std::min(backoff_ms_ * 2, 64) : 1;
        try {
            retry_ = loop_->owner().call_later(std::chrono::milliseconds(backoff_ms_), [this] {
                retry_ = {};
                if (lost_) return;
                writable_ = true;
                if (queued_at == not_queued) loop_->push(this);
            });
        } catch (...) {  // no memory for a timer: the next edge will do
        }
    }

    void resume_writing() noexcept {
        writing_paused_ = false;
        drain_.set();
    }

    void fail(int err, const char* call) noexcept {
        try {
            throw_os_error(err, std::string("aio: ") + call + " on a datagram endpoint at " + local_.to_string());
        } catch (...) {
            lose(std::current_exception());
        }
    }

    // asyncio's connection_lost: the socket closes; receivers see the end, drain()
    // the loss, wait_closed() returns. Datagrams already received stay to be taken.
    void lose(std::exception_ptr e) noexcept {
        if (lost_) return;
        lost_ = true;
        closing_ = true;
        if (retry_) {
            retry_.cancel();
            retry_ = {};
        }
        if (registered_) {
            loop_->remove_io(fd_.fd(), this);
            registered_ = false;
        } else if (loop_) {
            loop_->withdraw(this);
        }
        fd_.close();
        out_.release();
        out_size_ = 0;
        out_count_ = 0;
        readable_ = writable_ = false;
        if (e && !fatal_) fatal_ = std::move(e);
        data_.set();
        drain_.set();
        closed_.set();
    }

    static void on_loop_closing(io_owner* owner) noexcept {
        auto& t = static_cast<datagram_transport&>(*owner);
        t.abort();
        if (t.orphaned_) delete &t;
    }

    loop_core* loop_;
    socket fd_;
    mutable socket_address local_;
    std::optional<socket_address> remote_;
    byte_buffer in_;   // received: in_header, the sender's address, the bytes
    byte_buffer out_;  // to send: out_header, the address (if any), the bytes
    std::deque<std::exception_ptr> errors_;  // the errors the queue's error records stand for, in order
    std::size_t in_bytes_ = 0;               // what the queue counts as: bytes + record_overhead each
    std::size_t in_count_ = 0;
    std::size_t out_size_ = 0;  // asyncio's buffer size: bytes + header_size each
    std::size_t out_count_ = 0;
    std::size_t queue_limit_;
    std::size_t high_water_ = default_high_water;
    std::size_t low_water_ = default_high_water / 4;
    std::exception_ptr fatal_;
    event data_;
    event drain_;
    event closed_;
    timer_handle retry_;
    std::uint32_t refs_ = 1;
    int backoff_ms_ = 0;
    bool connected_;
    bool unix_ = false;
    bool registered_ = false;
    bool readable_ = false;
    bool error_edge_ = false;
    bool writable_ = true;  // room until a send says otherwise: the first datagram goes at once
    bool paused_ = false;
    bool writing_paused_ = false;
    bool closing_ = false;
    bool lost_ = false;
    bool orphaned_ = false;  // no handle left: it frees itself once flushed
};

}  // namespace aio::detail
