// The seed's other claim made real: "run 100 queries, each of which takes one second:
// at least 100 seconds one after another; started and awaited together, under one
// second". Each query is `SELECT pg_sleep(1)` on a real PostgreSQL server, sent through
// libpq's non-blocking API: the loop waits on each connection's socket with
// aio::wait_readable / wait_writable, so there is no thread per query and no call that
// blocks the loop. The program runs the queries one after another over one connection,
// then all at once over as many connections, and prints how long each way took.
//
//   postgres_queries [--concurrent-only] [queries [conninfo]]
//
// queries: 100 by default (CI runs 5). conninfo: a libpq connection string such as
// "host=127.0.0.1 port=5432 user=me dbname=postgres"; when it is absent or empty libpq
// reads PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD... as psql does.
// --concurrent-only skips the sequential part (100 queries take 100 s one by one).
#include <aio/aio.hpp>
#include <libpq-fe.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "seconds.hpp"

namespace pg {

// A libpq or server failure, with libpq's own message.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

inline std::string message(const char* what, const char* libpq_message) {
    std::string text = std::string(what) + ": " + (libpq_message && *libpq_message ? libpq_message : "failed");
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
}

// One statement's result; PQclear'ed when it goes.
class result {
public:
    explicit result(PGresult* r) noexcept : r_(r) {}

    ExecStatusType status() const noexcept { return PQresultStatus(r_.get()); }
    std::string_view command_status() const noexcept { return PQcmdStatus(r_.get()); }  // "SELECT 1"
    int rows() const noexcept { return PQntuples(r_.get()); }
    int columns() const noexcept { return PQnfields(r_.get()); }
    // The text of one field; empty for SQL NULL.
    std::optional<std::string_view> value(int row, int column) const {
        if (row < 0 || row >= rows() || column < 0 || column >= columns())
            throw std::out_of_range("pg::result::value(): no field (" + std::to_string(row) + ", " +
                                    std::to_string(column) + ")");
        if (PQgetisnull(r_.get(), row, column)) return std::nullopt;
        return std::string_view(PQgetvalue(r_.get(), row, column), PQgetlength(r_.get(), row, column));
    }

private:
    struct clear {
        void operator()(PGresult* r) const noexcept { PQclear(r); }
    };
    std::unique_ptr<PGresult, clear> r_;
};

// Until `fd` is readable or writable, whichever comes first (what PQflush asks for):
// two level-triggered callbacks set one event, and go on every exit, cancellation too.
inline aio::task<> readable_or_writable(int fd) {
    aio::event ready;
    aio::event_loop& loop = aio::get_running_loop();
    struct unwatch {
        aio::event_loop& loop;
        int fd;
        ~unwatch() {
            loop.remove_reader(fd);
            loop.remove_writer(fd);
        }
    } guard{loop, fd};
    loop.add_reader(fd, [&ready] { ready.set(); });
    loop.add_writer(fd, [&ready] { ready.set(); });
    co_await ready.wait();
}

// A connection (PGconn, PQfinish'ed when it goes) in non-blocking mode; one query at a
// time, as libpq allows. Like any object a running coroutine uses, it must stay where it
// is (not moved, not destroyed) while one of its queries is in flight.
//
// Cancellation: a query cancelled (or failing) while it is in flight leaves the protocol
// half-way, so the connection closes itself then and every later query() throws
// pg::error saying why; nothing is reused in an unknown state. The server notices the
// closed socket when it next writes to it, so a statement still running there runs to
// its end (PostgreSQL 14+ notices sooner with client_connection_check_interval).
// libpq's PQcancel would stop it at once, but it is a blocking call (it connects to the
// server and waits): not something to run on the loop. libpq 17's PQcancelStart /
// PQcancelPoll are its non-blocking form.
class connection {
public:
    connection() = default;  // closed

    // Opens a connection: PQconnectStart, then PQconnectPoll whenever the socket it
    // names is ready in the direction it asks for.
    friend aio::task<connection> connect(std::string conninfo);

    bool is_open() const noexcept { return conn_ != nullptr; }
    void close() noexcept { conn_.reset(); }

    // Sends `sql` (one or more statements) and returns the last statement's result, once
    // the server has sent them all. A statement the server rejects: pg::error with its
    // message, after the rest are read (the connection stays usable).
    aio::task<result> query(std::string sql) {
        PGconn* c = open_connection("pg::connection::query()");
        if (in_flight_) throw error("pg::connection::query(): another query is in flight on this connection");
        if (!PQsendQuery(c, sql.c_str())) throw error(message("PQsendQuery", PQerrorMessage(c)));
        in_flight guard(*this);

        // Send: PQflush until libpq's buffer is empty, reading what arrives meanwhile.
        for (int sent; (sent = PQflush(c)) != 0;) {
            if (sent < 0) throw error(message("PQflush", PQerrorMessage(c)));
            co_await readable_or_writable(PQsocket(c));
            if (!PQconsumeInput(c)) throw error(message("PQconsumeInput", PQerrorMessage(c)));
        }

        // Receive: PQgetResult while libpq has a whole result; a null one is the end.
        std::optional<result> last;
        std::optional<std::string> failure;
        for (;;) {
            while (!PQisBusy(c)) {
                PGresult* r = PQgetResult(c);
                if (!r) {
                    guard.finished();
                    if (failure) throw error(*failure);
                    if (!last) throw error("pg::connection::query(): the server sent no result");
                    co_return std::move(*last);
                }
                result next(r);
                switch (next.status()) {
                case PGRES_FATAL_ERROR:
                case PGRES_BAD_RESPONSE:
                    if (!failure) failure = message("query", PQresultErrorMessage(r));
                    break;
                case PGRES_COPY_IN:
                case PGRES_COPY_OUT:
                case PGRES_COPY_BOTH:
                    throw error("pg::connection::query(): COPY is not supported here");  // closes
                default:
                    last.emplace(std::move(next));
                }
            }
            co_await aio::wait_readable(PQsocket(c));
            if (!PQconsumeInput(c)) throw error(message("PQconsumeInput", PQerrorMessage(c)));
        }
    }

private:
    struct finish {
        void operator()(PGconn* c) const noexcept { PQfinish(c); }
    };

    // While a query is in flight; leaving early (an exception, a cancellation, the frame
    // destroyed) closes the connection.
    class in_flight {
    public:
        explicit in_flight(connection& c) noexcept : c_(c) { c_.in_flight_ = true; }
        in_flight(const in_flight&) = delete;
        in_flight& operator=(const in_flight&) = delete;
        ~in_flight() {
            c_.in_flight_ = false;
            if (!finished_) {
                c_.close();
                c_.closed_because_ = "a query on it was cancelled or failed half-way";
            }
        }
        void finished() noexcept { finished_ = true; }

    private:
        connection& c_;
        bool finished_ = false;
    };

    PGconn* open_connection(const char* what) const {
        if (!conn_) throw error(std::string(what) + ": the connection is closed" +
                                (closed_because_.empty() ? "" : " (" + closed_because_ + ")"));
        return conn_.get();
    }

    std::unique_ptr<PGconn, finish> conn_;
    bool in_flight_ = false;
    std::string closed_because_;
};

inline aio::task<connection> connect(std::string conninfo) {
    connection db;
    db.conn_.reset(PQconnectStart(conninfo.c_str()));
    PGconn* c = db.conn_.get();
    if (!c) throw error("PQconnectStart: out of memory");
    if (PQstatus(c) == CONNECTION_BAD) throw error(message("connect", PQerrorMessage(c)));
    // As libpq's documentation says: start as if PQconnectPoll had asked for writing. The
    // socket may change between calls (another address, SSL refused), so ask each time.
    for (PostgresPollingStatusType poll = PGRES_POLLING_WRITING; poll != PGRES_POLLING_OK; poll = PQconnectPoll(c)) {
        if (poll == PGRES_POLLING_FAILED) throw error(message("connect", PQerrorMessage(c)));
        if (poll == PGRES_POLLING_READING) co_await aio::wait_readable(PQsocket(c));
        else co_await aio::wait_writable(PQsocket(c));
    }
    if (PQsetnonblocking(c, 1) != 0) throw error(message("PQsetnonblocking", PQerrorMessage(c)));
    co_return db;
}

}  // namespace pg

constexpr const char* slow_query = "SELECT pg_sleep(1)";

double seconds_from(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// What a user writes: one slow query, its rows counted.
aio::task<int> run_query(pg::connection& db) {
    pg::result r = co_await db.query(slow_query);
    co_return r.rows();
}

aio::task<> main_task(int queries, std::string conninfo, bool concurrent_only) {
    if (!concurrent_only) {
        pg::connection db = co_await pg::connect(conninfo);
        const auto start = std::chrono::steady_clock::now();
        int rows = 0;
        for (int i = 0; i < queries; ++i) rows += co_await run_query(db);
        std::printf("one after another: %d queries over 1 connection, %d rows, in %s seconds\n", queries, rows,
                    python_float(std::round(seconds_from(start))).c_str());
    }

    // One connection a query, opened together beforehand (as asyncpg's create_pool
    // would): the figure is the queries' time.
    std::vector<aio::task<pg::connection>> opening;
    for (int i = 0; i < queries; ++i) opening.push_back(pg::connect(conninfo));
    std::vector<pg::connection> pool = co_await aio::gather(std::move(opening));

    const auto start = std::chrono::steady_clock::now();
    std::vector<aio::task<int>> all;
    for (pg::connection& db : pool) all.push_back(run_query(db));
    int rows = 0;
    for (int n : co_await aio::gather(std::move(all))) rows += n;
    std::printf("all at once: %d queries over %zu connections, %d rows, in %.2f seconds\n", queries, pool.size(),
                rows, seconds_from(start));
}

int main(int argc, char** argv) {
    bool concurrent_only = false;
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--concurrent-only") == 0) concurrent_only = true;
        else args.emplace_back(argv[i]);
    }
    const int queries = args.empty() ? 100 : std::atoi(args[0].c_str());
    if (queries <= 0 || args.size() > 2) {
        std::fprintf(stderr, "usage: postgres_queries [--concurrent-only] [queries > 0 [conninfo]]\n");
        return 2;
    }
    try {
        aio::run(main_task(queries, args.size() > 1 ? args[1] : std::string(), concurrent_only));
    } catch (const pg::error& e) {
        std::fprintf(stderr, "postgres_queries: %s\n", e.what());
        return 1;
    }
}
