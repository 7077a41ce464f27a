#pragma once
// A connected stream socket inside the loop: asyncio's _SelectorSocketTransport and
// StreamReaderProtocol in one object, shared by a stream_reader and a stream_writer.
//
// The reactor's side (what makes it fast):
// - The socket is registered once for its life, edge-triggered, for both directions;
//   the transport remembers what the last edge said (readable_, writable_) until a
//   system call says otherwise.
// - Reading happens in the transport's step, which an edge queues (rule 4): it reads
//   into the buffer until a read comes back short — the socket is drained then, and
//   no recv is wasted on EAGAIN — or a budget of reads is spent, after which the step
//   queues itself behind the others so that one busy socket cannot starve them.
// - Writing is tried at once: write() sends straight from the caller's bytes when
//   nothing is queued, and buffers only what the kernel did not take; the rest goes
//   when the socket says it is writable again.
// - Reading pauses when more than twice the limit is buffered and resumes when a
//   read brings it down to the limit (asyncio's pause_reading / resume_reading).
//
// What the reader and the writer wait on are aio::events (the one FIFO waiter queue):
// data arrived, writing may resume, closed. No user code ever runs inside the step.
//
// Lifetime: one reference per handle (reader, writer). When the last goes, a transport
// still open is closed (its output flushed first, as StreamWriter.__del__ closes it);
// one that still has output to flush owns itself until it is flushed or the loop
// closes. A closing loop aborts every transport it has.
//
// A layer (stream_layer.hpp: TLS) may be installed on an open transport: then the
// socket's bytes go to it and it fills the reader's buffer; the program's writes go
// to it and it fills the output queue; close() lets it end its side first. Without
// one, each path pays a single branch.
//
// Pipes: the same transport carries a pipe or any other stream descriptor that is not
// a socket (a subprocess's stdin, stdout, stderr: asyncio's _UnixReadPipeTransport and
// _UnixWritePipeTransport). It reads and writes with read() and write() instead of
// recv() and send(), in the directions the descriptor was opened for; a write to a pipe
// whose reader has gone fails with aio::broken_pipe_error instead of killing the
// process with SIGPIPE; write_eof() closes a pipe once its output has gone; and a write
// end whose reader closes with nothing queued is lost quietly, as asyncio's is.

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include "../../detail/io_node.hpp"
#include "../../detail/loop_core.hpp"
#include "../../errors.hpp"
#include "../../event.hpp"
#include "../../os_error.hpp"
#include "../socket.hpp"
#include "byte_buffer.hpp"
#include "stream_layer.hpp"

namespace aio::detail {

// write() to a pipe without SIGPIPE: the signal is blocked in this thread for the call,
// and one the call raised is taken back before it is unblocked (unless the thread had
// it blocked already: then a pending SIGPIPE may be the program's own, and stays).
inline ssize_t write_without_sigpipe(int fd, const void* data, std::size_t size) noexcept {
    sigset_t pipe_signal;
    sigset_t previous;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, &previous);
    const ssize_t n = ::write(fd, data, size);
    const int err = errno;
    if (n < 0 && err == EPIPE && !sigismember(&previous, SIGPIPE)) {
        const timespec now{};
        while (sigtimedwait(&pipe_signal, nullptr, &now) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    errno = err;
    return n;
}

class stream_transport final : io_node, io_owner {
public:
    static constexpr std::size_t default_limit = std::size_t{64} << 10;
    static constexpr std::size_t default_high_water = std::size_t{64} << 10;
    static constexpr int read_budget = 16;            // reads a step may make (tokio: 128 operations)
    static constexpr std::size_t read_size = std::size_t{64} << 10;  // room offered to one recv
    static constexpr std::size_t discard_at_close = std::size_t{1} << 20;
    static constexpr std::size_t keep_when_idle = std::size_t{4} << 10;  // an emptied buffer past this is freed
    // A layer's output queue that empties keeps its block up to this size: a bulk
    // sender's queue empties between two writes, and a new block each time costs its
    // page faults again.
    static constexpr std::size_t layer_keeps = std::size_t{1} << 20;

    // Registers `s` with the running loop: one reference, the caller's.
    static stream_transport* open(loop_core& loop, socket s, std::size_t limit) {
        auto* t = new stream_transport(loop, std::move(s), limit);
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
            if (!lost_) {  // output still to flush: it owns itself until then
                orphaned_ = true;
                return;
            }
        }
        delete this;
    }

    // --- the reader's side
    std::string_view buffered() const noexcept { return in_.view(); }
    void consume(std::size_t n) noexcept {
        in_.consume(n);
        maybe_resume();
    }
    void clear_input() noexcept {
        in_.release();
        maybe_resume();
    }
    bool eof() const noexcept { return eof_; }
    const std::exception_ptr& error() const noexcept { return error_; }
    void set_error(std::exception_ptr e) noexcept {  // stream_reader::set_exception
        error_ = std::move(e);
        data_.set();
    }
    std::size_t limit() const noexcept { return limit_; }

    // Before a reader waits: a paused transport resumes (waiting while paused would
    // never end: readexactly(n) with n over twice the limit), and the next arrival wakes.
    // A reader that waits for the network with nothing buffered lets a large buffer go:
    // an idle connection keeps none (a busy one keeps its buffer from read to read).
    void before_wait() {
        if (paused_) resume();
        if (in_.empty() && !readable_ && in_.capacity() > keep_when_idle) in_.release();
        data_.clear();
    }
    event& data_arrived() noexcept { return data_; }
    bool reader_waiting = false;  // one reader at a time (asyncio's _wait_for_data)

    // --- the writer's side
    // Throws aio::runtime_error after write_eof(). After the connection is lost, bytes
    // are dropped (asyncio counts them and logs; drain() raises).
    void write(std::string_view bytes) {
        if (eof_requested_) throw aio::runtime_error("Cannot call write() after write_eof()");
        if (bytes.empty()) return;
        if (lost_) return;
        if (layer_) [[unlikely]]
            return layer_->write(*this, bytes);
        if (out_.empty() && writable_) {
            const ssize_t n = send_some(bytes);
            if (n < 0) return;  // lost
            bytes.remove_prefix(static_cast<std::size_t>(n));
            if (bytes.empty()) return;
        }
        out_.append(bytes);
        if (!writing_paused_ && out_.size() > high_water_) {
            writing_paused_ = true;
            drain_.clear();
        }
    }
    void write_eof() {
        if (layer_) [[unlikely]]  // asyncio's SSL transport raises NotImplementedError
            throw aio::runtime_error("write_eof() is not supported on a TLS stream (can_write_eof() is false)");
        if (closing_ || lost_ || eof_requested_) return;
        eof_requested_ = true;
        if (out_.empty()) shutdown_write();
    }
    // Stops reading, flushes what is queued, then closes the socket. With a layer, the
    // layer ends its side first (TLS: close_notify both ways), reading meanwhile.
    void close() noexcept {
        if (closing_ || lost_) return;
        if (layer_) [[unlikely]] {
            if (layer_closing_) return;
            layer_closing_ = true;
            if (paused_) resume();  // what the layer waits for must be read
            layer_->close(*this);
            return;
        }
        closing_ = true;
        if (out_.empty()) finish_close();
    }
    // Closes now; what is queued is dropped.
    void abort() noexcept {
        closing_ = true;
        lose(nullptr);
    }
    bool is_closing() const noexcept { return closing_ || lost_ || layer_closing_; }
    bool lost() const noexcept { return lost_; }
    bool writing_paused() const noexcept { return writing_paused_; }
    event& drained() noexcept { return drain_; }
    event& closed() noexcept { return closed_; }
    std::size_t write_buffer_size() const noexcept { return out_.size(); }
    std::size_t high_water() const noexcept { return high_water_; }
    std::size_t low_water() const noexcept { return low_water_; }
    // asyncio's set_write_buffer_limits: low defaults to high / 4; high to 4 × low.
    void set_write_buffer_limits(std::size_t high, std::size_t low) {
        if (low > high)
            throw std::invalid_argument("aio: high (" + std::to_string(high) + ") must be >= low (" +
                                        std::to_string(low) + ")");
        high_water_ = high;
        low_water_ = low;
        if (!writing_paused_ && out_.size() > high_water_) {
            writing_paused_ = true;
            drain_.clear();
        } else if (writing_paused_ && out_.size() <= low_water_) {
            resume_writing();
        }
    }

    int fd() const noexcept { return fd_.fd(); }

    // Told once, when the connection is lost (a server counts its connections).
    struct lost_hook {
        void (*lost)(lost_hook*, stream_transport&) noexcept = nullptr;
    };
    void on_lost(lost_hook* hook) noexcept { lost_hook_ = hook; }
    // Kept from when it connected: they outlive the socket.
    const socket_address& peer() const noexcept { return peer_; }
    const socket_address& local() const noexcept { return local_; }
    bool accepted = false;  // made by a server: a layer installed later is server-side

    // --- a layer's side (stream_layer.hpp)
    // Takes `layer` and starts it; what the socket has already said goes to it.
    void install_layer(std::unique_ptr<stream_layer> layer) noexcept {
        layer_ = layer.release();
        layer_->start(*this);
        if (!lost_ && readable_ && !paused_ && !closing_ && queued_at == not_queued) loop_->push(this);
    }
    stream_layer* layer() const noexcept { return layer_; }
    loop_core& loop() const noexcept { return *loop_; }
    byte_buffer& plain_input() noexcept { return in_; }   // the reader's buffer
    byte_buffer& wire_output() noexcept { return out_; }  // what goes on the wire, in order
    // Sends what the layer queued, as far as the socket takes it; drain() pauses past
    // the high-water mark, as for write().
    void send_output() noexcept {
        if (lost_) return;
        if (writable_ && !out_.empty()) flush();
        if (!lost_ && !writing_paused_ && out_.size() > high_water_) {
            writing_paused_ = true;
            drain_.clear();
        }
    }
    // The plaintext stream ended cleanly (TLS: the peer's close_notify).
    void plain_eof() noexcept {
        eof_ = true;
        data_.set();
    }
    // The layer's side is over: flush, then close the socket.
    void close_transport() noexcept {
        if (closing_ || lost_) return;
        closing_ = true;
        if (out_.empty()) finish_close();
    }
    // The connection cannot go on (`e` is what reads and drain() throw; null: closed).
    // From inside a layer's call; fail_from_outside() from anywhere else (a timer): a
    // transport nobody holds any more is freed there.
    void fail_layered(std::exception_ptr e) noexcept {
        closing_ = true;
        lose(std::move(e));
    }
    void fail_from_outside(std::exception_ptr e) noexcept {
        fail_layered(std::move(e));
        if (orphaned_) delete this;
    }

private:
    stream_transport(loop_core& loop, socket s, std::size_t limit) : loop_(&loop), fd_(std::move(s)), limit_(limit) {
        run = step;
        loop_closing = on_loop_closing;
        struct stat st {};
        if (::fstat(fd_.fd(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
            pipe_ = true;
            reads_ = (::fcntl(fd_.fd(), F_GETFL) & O_ACCMODE) != O_WRONLY;
            return;
        }
        try {
            peer_ = fd_.peer_address();
        } catch (const os_error&) {
        }
        try {
            local_ = fd_.local_address();
        } catch (const os_error&) {
        }
    }
    ~stream_transport() {
        lose(nullptr);
        if (links.prev) loop_->io_owners.unlink(this);
        delete layer_;
    }

    static void step(ready_item* item) noexcept {
        auto& t = static_cast<stream_transport&>(static_cast<io_node&>(*item));
        const std::uint32_t events = std::exchange(t.events, 0);
        if (events & (io_readable | io_error)) t.readable_ = true;
        if (events & io_hangup) t.hangup_ = true;  // the EOF came with this edge: read to it
        if (events & (io_writable | io_error)) t.writable_ = true;
        if (t.lost_) return;
        if (!t.reads_) {  // a pipe's write end: its reader has closed when it reports readable
            t.readable_ = false;
            if ((events & io_error) && t.out_.empty()) t.lose(nullptr);
        }
        if (t.writable_ && !t.out_.empty()) t.flush();
        if (!t.lost_ && t.readable_ && !t.paused_ && !t.closing_) t.read_ready();
        if (t.lost_ && t.orphaned_) delete &t;
    }

    // Where small reads land before they are appended: one block a thread, made on
    // its first read (null when there is no memory for it).
    static char* scratch() noexcept {
        static thread_local std::unique_ptr<char[]> block;
        if (!block) block.reset(new (std::nothrow) char[read_size]);
        return block.get();
    }

    void read_ready() noexcept {
        if (layer_) [[unlikely]]
            return layered_read();
        bool arrived = false;
        int reads = 0;
        while (readable_ && !paused_) {
            if (reads++ == read_budget) {  // still readable: the others first
                if (queued_at == not_queued) loop_->push(this);
                break;
            }
            // A large buffer already there takes the bytes directly; otherwise they go
            // through the thread's scratch block, and the buffer grows only by what
            // arrived: an idle connection keeps no 64 KiB buffer.
            char* room = scratch();
            const bool direct = in_.room() >= read_size / 4 || !room;
            if (direct) {
                try {
                    room = in_.prepare(read_size / 4);
                } catch (...) {  // no memory at all: the stream cannot go on
                    lose(std::current_exception());
                    return;
                }
            }
            const std::size_t offered = direct ? in_.room() : read_size;
            const ssize_t n = pipe_ ? ::read(fd_.fd(), room, offered) : ::recv(fd_.fd(), room, offered, MSG_DONTWAIT);
            if (n > 0) {
                if (direct) {
                    in_.commit(static_cast<std::size_t>(n));
                } else {
                    try {
                        in_.append(std::string_view(room, static_cast<std::size_t>(n)));
                    } catch (...) {  // no memory for the buffer: the stream cannot go on
                        lose(std::current_exception());
                        return;
                    }
                }
                arrived = true;
                // A short read drained the socket, unless the peer's FIN came with
                // the same edge: no other edge will tell of that EOF.
                if (static_cast<std::size_t>(n) < offered && !hangup_) readable_ = false;
                if (in_.size() > 2 * limit_) paused_ = true;
            } else if (n == 0) {
                readable_ = false;
                eof_ = true;
                arrived = true;
            } else if (errno == EINTR) {
                --reads;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                readable_ = false;
            } else {
                fail(errno, "recv");
                return;
            }
        }
        if (arrived) data_.set();
    }

    // With a layer: what the socket gives is the layer's (ciphertext), read into the
    // thread's scratch block and handed over at once; the layer puts what it decrypts
    // into the reader's buffer, which pauses reading past twice the limit as ever.
    void layered_read() noexcept {
        char* room = scratch();
        if (!room) {
            fail_layered(std::make_exception_ptr(std::bad_alloc()));
            return;
        }
        const std::size_t before = in_.size();
        int reads = 0;
        while (readable_ && !paused_ && !closing_ && !lost_) {
            if (reads++ == read_budget) {
                if (queued_at == not_queued) loop_->push(this);
                break;
            }
            const ssize_t n = pipe_ ? ::read(fd_.fd(), room, read_size) : ::recv(fd_.fd(), room, read_size, MSG_DONTWAIT);
            if (n > 0) {
                if (static_cast<std::size_t>(n) < read_size && !hangup_) readable_ = false;
                layer_->received(*this, std::string_view(room, static_cast<std::size_t>(n)));
                if (in_.size() > 2 * limit_) paused_ = true;
            } else if (n == 0) {
                readable_ = false;
                layer_->eof_received(*this);
            } else if (errno == EINTR) {
                --reads;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                readable_ = false;
            } else {
                fail(errno, "recv");
                return;
            }
        }
        if (in_.size() != before) data_.set();
    }

    // Sends from `bytes`; how many went, or -1 when the connection is lost.
    ssize_t send_some(std::string_view bytes) noexcept {
        for (;;) {
            const ssize_t n = pipe_ ? write_without_sigpipe(fd_.fd(), bytes.data(), bytes.size())
                                    : ::send(fd_.fd(), bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n >= 0) {
                if (static_cast<std::size_t>(n) < bytes.size()) writable_ = false;
                return n;
            }
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                writable_ = false;
                return 0;
            }
            fail(errno, "send");
            return -1;
        }
    }

    void flush() noexcept {
        while (!out_.empty() && writable_) {
            const ssize_t n = send_some(out_.view());
            if (n < 0) return;
            out_.consume(static_cast<std::size_t>(n));
        }
        if (writing_paused_ && out_.size() <= low_water_) resume_writing();
        if (out_.empty()) {
            // A layer's queue empties after every record it sends: a small one is kept.
            if (!layer_ || out_.capacity() > layer_keeps) out_.release();
            if (eof_requested_) shutdown_write();
            if (closing_) finish_close();
        }
    }

    void resume_writing() noexcept {
        writing_paused_ = false;
        drain_.set();
    }

    void shutdown_write() noexcept {
        if (pipe_) {  // a pipe has no half-close: its write end closes, and the reader sees EOF
            lose(nullptr);
            return;
        }
        if (!lost_ && ::shutdown(fd_.fd(), SHUT_WR) < 0 && errno != ENOTCONN) fail(errno, "shutdown");
    }

    void maybe_resume() noexcept {
        if (paused_ && in_.size() <= limit_) resume();
    }
    void resume() noexcept {
        paused_ = false;
        if (readable_ && !lost_ && !closing_ && queued_at == not_queued) loop_->push(this);
    }

    // Output flushed: close. Input the program never read would make the kernel reset
    // the connection, and a reset can destroy the peer's copy of what was just sent;
    // what is waiting is read and dropped first.
    void finish_close() noexcept {
        if (!lost_ && !eof_ && !pipe_) {
            char sink[16384];
            std::size_t dropped = 0;
            while (dropped < discard_at_close) {
                const ssize_t n = ::recv(fd_.fd(), sink, sizeof sink, MSG_DONTWAIT);
                if (n > 0) dropped += static_cast<std::size_t>(n);
                else if (n < 0 && errno == EINTR) continue;
                else break;
            }
        }
        lose(nullptr);
    }

    void fail(int err, const char* call) noexcept {
        try {
            throw_os_error(err, std::string("aio: ") + call +
                                    (pipe_ ? " on a pipe (descriptor " + std::to_string(fd_.fd()) + ")" : " on a stream to " + peer_.to_string()));
        } catch (...) {
            lose(std::current_exception());
        }
    }

    // asyncio's connection_lost: the socket closes; the reader sees EOF (or the error),
    // drain() the loss, wait_closed() returns.
    void lose(std::exception_ptr e) noexcept {
        if (lost_) return;
        lost_ = true;
        closing_ = true;
        if (registered_) {
            loop_->remove_io(fd_.fd(), this);
            registered_ = false;
        } else if (loop_) {
            loop_->withdraw(this);
        }
        fd_.close();
        out_.release();
        readable_ = writable_ = false;
        if (e && !error_) error_ = std::move(e);
        else if (!e) eof_ = true;
        data_.set();
        drain_.set();
        closed_.set();
        if (layer_) layer_->lost(*this);
        if (lost_hook* hook = std::exchange(lost_hook_, nullptr)) hook->lost(hook, *this);
    }

    static void on_loop_closing(io_owner* owner) noexcept {
        auto& t = static_cast<stream_transport&>(*owner);
        t.abort();
        if (t.orphaned_) delete &t;
    }

    loop_core* loop_;
    socket fd_;
    socket_address peer_;
    socket_address local_;
    byte_buffer in_;
    byte_buffer out_;
    std::size_t limit_;
    std::size_t high_water_ = default_high_water;
    std::size_t low_water_ = default_high_water / 4;
    std::exception_ptr error_;
    event data_;
    event drain_;
    event closed_;
    lost_hook* lost_hook_ = nullptr;
    std::uint32_t refs_ = 1;
    bool registered_ = false;
    bool readable_ = false;
    // A connected socket has room until a send says otherwise: the first write goes
    // at once, without waiting for the registration's first edge.
    bool writable_ = true;
    bool hangup_ = false;  // the peer has shut its side down: reads go on until recv says EOF
    bool pipe_ = false;    // not a socket: read() and write()
    bool reads_ = true;    // false for a pipe's write end
    bool paused_ = false;
    bool eof_ = false;
    bool eof_requested_ = false;
    bool writing_paused_ = false;
    bool closing_ = false;
    bool lost_ = false;
    bool orphaned_ = false;  // no handle left: it frees itself once flushed
    bool layer_closing_ = false;  // close() was handed to the layer
    stream_layer* layer_ = nullptr;  // owned
};

}  // namespace aio::detail
