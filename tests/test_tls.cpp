// TLS streams (include/aio/tls.hpp, tls/*.hpp, tls/detail/*.hpp, and the layer hook in
// net/detail/stream_layer.hpp): against real peers — Debian's `openssl s_server` and
// `s_client`, spawned with posix_spawn — and aio against itself. A CA, a certificate
// for localhost / 127.0.0.1 it signed and an untrusted self-signed one are made with
// the openssl command at the start, into a temporary directory.
//
// Every test runs on a fresh loop, bounded in time, and counts the process's
// descriptors before and after; every child is killed and reaped. No co_await appears
// inside a REQUIRE (each is awaited into a local first).
#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/event.hpp>
#include <aio/event_loop.hpp>
#include <aio/net/readiness.hpp>
#include <aio/net/server.hpp>
#include <aio/net/stream_errors.hpp>
#include <aio/net/streams.hpp>
#include <aio/os_error.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>
#include <aio/tls.hpp>
#include <aio/wait_for.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <any>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <sstream>
#include <string>
#include <vector>

#include "support/catch.hpp"
#include "support/net_run.hpp"

using namespace std::chrono_literals;
using aio_test::reports;
using aio_test::run_checked;

extern char** environ;

namespace {

// --- child processes

// Runs argv[0] (found on PATH) with stdin from `in` (a descriptor, -1: /dev/null),
// stdout to `out` (-1: /dev/null) and stderr to the file `err` ("": /dev/null).
pid_t spawn(const std::vector<std::string>& args, int in = -1, int out = -1, const std::string& err = {}) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    if (in >= 0) posix_spawn_file_actions_adddup2(&actions, in, 0);
    else posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    if (out >= 0) posix_spawn_file_actions_adddup2(&actions, out, 1);
    else posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, err.empty() ? "/dev/null" : err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE(rc == 0);
    return pid;
}

// Runs a command to its end; its exit status.
int run_command(const std::vector<std::string>& args, const std::string& err = {}) {
    const pid_t pid = spawn(args, -1, -1, err);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A peer process: killed and reaped when the test ends, whatever happened.
struct child {
    pid_t pid = -1;
    int stdin_fd = -1;   // our end of its stdin, when it is a pipe
    int stdout_fd = -1;  // our end of its stdout (non-blocking), when it is a pipe
    std::string err;     // its stderr, a file
    child() = default;
    child(const child&) = delete;
    child& operator=(const child&) = delete;
    ~child() {
        close_stdin();
        if (pid > 0) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        if (stdout_fd >= 0) ::close(stdout_fd);
    }
    void close_stdin() {
        if (stdin_fd >= 0) ::close(stdin_fd);
        stdin_fd = -1;
    }
    void send(std::string_view s) const {
        while (!s.empty()) {
            const ssize_t n = ::write(stdin_fd, s.data(), s.size());
            REQUIRE(n > 0);
            s.remove_prefix(static_cast<std::size_t>(n));
        }
    }
    std::string errors() const {
        std::ifstream f(err);
        std::stringstream s;
        s << f.rdbuf();
        return s.str();
    }
};

// `args`, with stdin a pipe (or the file `stdin_file`) and stdout a pipe.
void start(child& c, const std::vector<std::string>& args, const std::string& err_file, const std::string& stdin_file = {}) {
    int in[2], out[2];
    int in_fd = -1;
    if (stdin_file.empty()) {
        REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
        in_fd = in[0];
        c.stdin_fd = in[1];
    } else {
        in_fd = ::open(stdin_file.c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(in_fd >= 0);
    }
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    c.err = err_file;
    c.pid = spawn(args, in_fd, out[1], err_file);
    ::close(in_fd);
    ::close(out[1]);
    c.stdout_fd = out[0];
    ::fcntl(c.stdout_fd, F_SETFL, O_NONBLOCK);
}

// Its exit status, waiting without blocking the loop.
aio::task<int> exit_status(child& c) {
    for (;;) {
        int status = 0;
        const pid_t r = ::waitpid(c.pid, &status, WNOHANG);
        if (r == c.pid) {
            c.pid = -1;
            co_return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        co_await aio::sleep(5ms);
    }
}

// What it writes to stdout, until `needle` is in it or it ends.
aio::task<std::string> output_until(child& c, std::string needle) {
    std::string seen;
    char buffer[65536];
    for (;;) {
        const ssize_t n = ::read(c.stdout_fd, buffer, sizeof buffer);
        if (n > 0) {
            seen.append(buffer, static_cast<std::size_t>(n));
            if (!needle.empty() && seen.find(needle) != std::string::npos) co_return seen;
            continue;
        }
        if (n == 0) co_return seen;
        co_await aio::wait_readable(c.stdout_fd);
    }
}

// A port nothing listens on now (for s_server, which cannot report one it picked when
// quiet), and whether something listens on it yet (/proc/net/tcp, without connecting).
std::uint16_t free_port() {
    aio::socket s(AF_INET, SOCK_STREAM);
    s.bind(aio::socket_address::ip("127.0.0.1", 0));
    return s.local_address().port();
}
bool listening(std::uint16_t port) {
    std::ifstream tcp("/proc/net/tcp");
    char wanted[32];
    std::snprintf(wanted, sizeof wanted, "0100007F:%04X", port);
    std::string line;
    while (std::getline(tcp, line))
        if (line.find(wanted) != std::string::npos && line.find(" 0A ") != std::string::npos) return true;
    return false;
}
void wait_listening(child& c, std::uint16_t port) {
    for (int i = 0; i < 500 && !listening(port); ++i) {
        int status = 0;
        if (::waitpid(c.pid, &status, WNOHANG) == c.pid) {
            c.pid = -1;
            FAIL("the peer exited before it listened: " << c.errors());
        }
        ::usleep(10000);
    }
    REQUIRE(listening(port));
}

// --- certificates

struct certificates {
    std::filesystem::path dir;
    std::string ca, server_cert, server_key, self_cert, self_key, garbage;
    certificates() {
        char name[] = "/tmp/aio-tls-XXXXXX";
        REQUIRE(::mkdtemp(name) != nullptr);
        dir = name;
        auto at = [&](const char* f) { return (dir / f).string(); };
        ca = at("ca.pem");
        server_cert = at("server.pem");
        server_key = at("server.key");
        self_cert = at("self.pem");
        self_key = at("self.key");
        garbage = at("garbage.pem");
        const std::string log = at("openssl.log");
        std::ofstream(at("ext.cnf")) << "basicConstraints=critical,CA:FALSE\n"
                                        "keyUsage=critical,digitalSignature,keyEncipherment\n"
                                        "extendedKeyUsage=serverAuth,clientAuth\n"
                                        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                        "subjectKeyIdentifier=hash\n"
                                        "authorityKeyIdentifier=keyid\n";
        std::ofstream(garbage) << "this is not a certificate\n";
        const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"};
        auto with = [&](std::vector<std::string> head, const std::vector<std::string>& tail) {
            head.insert(head.end(), tail.begin(), tail.end());
            return head;
        };
        REQUIRE(run_command(with(with({"openssl", "req", "-x509"}, ec),
                                 {"-keyout", at("ca.key"), "-out", ca, "-days", "3", "-subj", "/CN=aio test CA", "-addext",
                                  "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"}),
                            log) == 0);
        REQUIRE(run_command(with(with({"openssl", "req"}, ec),
                                 {"-keyout", server_key, "-out", at("server.csr"), "-subj", "/O=aio tests/CN=localhost"}),
                            log) == 0);
        REQUIRE(run_command({"openssl", "x509", "-req", "-in", at("server.csr"), "-CA", ca, "-CAkey", at("ca.key"), "-set_serial",
                             "2", "-days", "3", "-extfile", at("ext.cnf"), "-out", server_cert},
                            log) == 0);
        REQUIRE(run_command(with(with({"openssl", "req", "-x509"}, ec),
                                 {"-keyout", self_key, "-out", self_cert, "-days", "3", "-subj", "/CN=localhost", "-addext",
                                  "subjectAltName=DNS:localhost,IP:127.0.0.1"}),
                            log) == 0);
    }
    ~certificates() {
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
    }
    std::string file(const char* name) const { return (dir / name).string(); }
};

const certificates& certs() {
    static const certificates c;
    return c;
}

aio::ssl_context server_context(bool self_signed = false) {
    aio::ssl_context ctx = aio::ssl_context::server();
    if (self_signed) ctx.load_cert_chain(certs().self_cert, certs().self_key);
    else ctx.load_cert_chain(certs().server_cert, certs().server_key);
    return ctx;
}
aio::ssl_context client_context() {
    aio::ssl_context ctx = aio::ssl_context::client();
    ctx.load_verify_locations(certs().ca);
    return ctx;
}

// One context of each kind for the tests that need nothing special (a context is a
// handle that connections share; the options refer to it).
const aio::ssl_context& client_ctx() {
    static const aio::ssl_context c = client_context();
    return c;
}
const aio::ssl_context& server_ctx() {
    static const aio::ssl_context c = server_context();
    return c;
}

std::uint16_t port_of(const aio::server& srv) { return srv.sockets().at(0).port(); }

std::string pattern(std::size_t n, std::size_t seed = 0) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 4099 + seed) % 26);
    return s;
}

// Whether `text` holds every one of `parts` (shown when it does not).
bool has(const std::string& text, std::initializer_list<std::string_view> parts) {
    for (std::string_view p : parts)
        if (text.find(p) == std::string::npos) {
            UNSCOPED_INFO("\"" << text << "\" lacks \"" << p << "\"");
            return false;
        }
    return true;
}

template <class E, class F>
std::string thrown(F&& f) {
    try {
        f();
    } catch (const E& e) {
        return e.what();
    }
    FAIL("nothing was thrown");
    return {};
}

}  // namespace

// --- contexts

TEST_CASE("ssl_context::client verifies, checks hostnames and refuses renegotiation by default") {
    aio::ssl_context ctx = aio::ssl_context::client();
    REQUIRE(ctx.check_hostname());
    REQUIRE(ctx.verify_mode() == aio::verify::optional);
    REQUIRE((SSL_CTX_get_options(ctx.native_handle()) & SSL_OP_NO_RENEGOTIATION) != 0);
    REQUIRE(SSL_CTX_get_min_proto_version(ctx.native_handle()) == TLS1_2_VERSION);
    REQUIRE_THROWS_AS(ctx.verify_mode(aio::verify::none), std::invalid_argument);
    ctx.check_hostname(false);
    ctx.verify_mode(aio::verify::none);
    REQUIRE(ctx.verify_mode() == aio::verify::none);
    aio::ssl_context copy = ctx;  // a handle: one SSL_CTX
    REQUIRE(copy.native_handle() == ctx.native_handle());
    REQUIRE_FALSE(aio::ssl_context::server().check_hostname());
}

TEST_CASE("a missing, unreadable or mismatched certificate or key throws ssl_error naming the file and the reason") {
    aio::ssl_context ctx = aio::ssl_context::server();
    try {
        ctx.load_cert_chain(certs().file("missing.pem"));
        FAIL("no error");
    } catch (const aio::ssl_error& e) {
        REQUIRE(e.error_number() == ENOENT);
        REQUIRE(has(e.what(), {"missing.pem", "No such file"}));
    }
    const std::string garbage = thrown<aio::ssl_error>([&] { ctx.load_cert_chain(certs().garbage); });
    REQUIRE(has(garbage, {"garbage.pem", "[PEM: NO_START_LINE] no start line"}));
    const std::string mismatch = thrown<aio::ssl_error>([&] { ctx.load_cert_chain(certs().server_cert, certs().self_key); });
    REQUIRE(has(mismatch, {"KEY_VALUES_MISMATCH"}));
    const std::string bad_key = thrown<aio::ssl_error>([&] { ctx.load_cert_chain(certs().server_cert, certs().garbage); });
    REQUIRE(has(bad_key, {"private key", "garbage.pem"}));
    const std::string bad_ca = thrown<aio::ssl_error>([&] { ctx.load_verify_locations(certs().garbage); });
    REQUIRE(has(bad_ca, {"garbage.pem"}));
    REQUIRE_THROWS_AS(ctx.set_alpn_protocols({""}), std::invalid_argument);
    REQUIRE_THROWS_AS(ctx.set_ciphers("NO-SUCH-CIPHER"), aio::ssl_error);
    ctx.load_cert_chain(certs().server_cert, certs().server_key);  // the context still works
}

TEST_CASE("the TLS options are refused without ssl, and a timeout must be positive") {
    auto body = [&]() -> aio::task<> {
        aio::server srv = co_await aio::start_server([](aio::stream_reader, aio::stream_writer) -> aio::task<> { co_return; },
                                                     "127.0.0.1", 0);
        const std::uint16_t port = port_of(srv);
        std::string what;
        try {
            (void)co_await aio::open_connection("127.0.0.1", port, {.server_hostname = "localhost"});
        } catch (const std::invalid_argument& e) {
            what = e.what();
        }
        REQUIRE(what == "server_hostname is only meaningful with ssl");
        what.clear();
        try {
            (void)co_await aio::open_connection("127.0.0.1", port, {.ssl_handshake_timeout = 1s});
        } catch (const std::invalid_argument& e) {
            what = e.what();
        }
        REQUIRE(what == "ssl_handshake_timeout is only meaningful with ssl");
        what.clear();
        try {
            (void)co_await aio::open_connection("127.0.0.1", port, {.ssl = client_ctx(), .ssl_handshake_timeout = -1s});
        } catch (const std::invalid_argument& e) {
            what = e.what();
        }
        REQUIRE(what == "ssl_handshake_timeout should be a positive number, got -1.0");
        what.clear();
        try {
            (void)co_await aio::start_server([](aio::stream_reader, aio::stream_writer) -> aio::task<> { co_return; }, "127.0.0.1", 0,
                                             {.ssl_shutdown_timeout = 1s});
        } catch (const std::invalid_argument& e) {
            what = e.what();
        }
        REQUIRE(what == "ssl_shutdown_timeout is only meaningful with ssl");
        what.clear();
        try {  // a client context cannot serve
            (void)co_await aio::open_connection("127.0.0.1", port, {.ssl = server_ctx()});
        } catch (const std::invalid_argument& e) {
            what = e.what();
        }
        REQUIRE(has(what, {"server ssl_context"}));
        what.clear();
        try {  // checking a hostname needs one
            (void)co_await aio::open_connection("127.0.0.1", port, {.ssl = client_ctx(), .server_hostname = ""});
        } catch (const std::invalid_argument& e) {
            what = e.what();
        }
        REQUIRE(what == "check_hostname requires server_hostname");
    };
    run_checked(body);
}

// --- against openssl s_server / s_client

TEST_CASE("an aio client handshakes with openssl s_server, exchanges lines, and its close is a clean close_notify") {
    const std::uint16_t port = free_port();
    child server;
    start(server,
          {"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port), "-cert", certs().server_cert, "-key",
           certs().server_key, "-naccept", "1", "-rev", "-alpn", "h2,http/1.1"},
          certs().file("s_server.err"));
    wait_listening(server, port);
    auto body = [&]() -> aio::task<> {
        aio::ssl_context ctx = client_context();
        ctx.set_alpn_protocols({"http/1.1"});
        auto [reader, writer] = co_await aio::open_connection("127.0.0.1", port, {.ssl = ctx, .server_hostname = "localhost"});
        REQUIRE_FALSE(writer.can_write_eof());
        REQUIRE_THROWS_AS(writer.write_eof(), aio::runtime_error);
        REQUIRE(std::any_cast<std::string>(writer.get_extra_info("version")) == "TLSv1.3");
        REQUIRE(std::any_cast<std::string>(writer.get_extra_info("alpn_protocol")) == "http/1.1");
        const auto cipher = std::any_cast<aio::tls_cipher>(writer.get_extra_info("cipher"));
        REQUIRE(cipher.bits >= 128);
        REQUIRE(cipher.version == "TLSv1.3");
        const auto cert = std::any_cast<aio::peer_certificate>(writer.get_extra_info("peercert"));
        REQUIRE(aio::peer_certificate::find(cert.subject, "commonName") == "localhost");
        REQUIRE(aio::peer_certificate::find(cert.subject, "organizationName") == "aio tests");
        REQUIRE(aio::peer_certificate::find(cert.issuer, "commonName") == "aio test CA");
        REQUIRE(cert.subject_alt_name == aio::peer_certificate::names{{"DNS", "localhost"}, {"IP Address", "127.0.0.1"}});
        REQUIRE(cert.not_after.size() > 10);
        REQUIRE(cert.version == 3);
        const auto object = std::any_cast<aio::ssl_object>(writer.get_extra_info("ssl_object"));
        REQUIRE(object.native_handle() != nullptr);
        REQUIRE_FALSE(object.server_side());
        REQUIRE(object.peer_certificate_der().size() > 100);
        REQUIRE(std::any_cast<aio::socket_address>(writer.get_extra_info("peername")).port() == port);
        // s_server -rev sends each line back reversed.
        writer.write("hello tls\n");
        co_await writer.drain();
        std::string line = co_await reader.readline();
        while (line.find("slt olleh") == std::string::npos) line = co_await reader.readline();  // after its banner
        REQUIRE(line.find("slt olleh") != std::string::npos);
        writer.close();
        co_await writer.wait_closed();
        const int status = co_await exit_status(server);  // -naccept 1: it ends once the client has gone
        REQUIRE(status == 0);
    };
    run_checked(body);
    INFO(server.errors());
    REQUIRE(server.errors().find("error") == std::string::npos);
}

TEST_CASE("openssl s_client handshakes with an aio server, gets its answer, and sees a clean close") {
    bool handled = false;
    auto body = [&]() -> aio::task<> {
        auto handler = [&](aio::stream_reader reader, aio::stream_writer writer) -> aio::task<> {
            handled = true;
            const auto object = std::any_cast<aio::ssl_object>(writer.get_extra_info("ssl_object"));
            REQUIRE(object.server_side());
            REQUIRE(object.server_hostname() == "localhost");  // the SNI s_client sent
            REQUIRE_FALSE(writer.get_extra_info("peercert").has_value());  // no client certificate
            std::string line = co_await reader.readline();
            writer.write("pong: " + line);
            co_await writer.drain();
            writer.close();
            co_await writer.wait_closed();
        };
        aio::server srv = co_await aio::start_server(handler, "127.0.0.1", 0, {.ssl = server_ctx()});
        child client;
        start(client,
              {"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port_of(srv)), "-CAfile", certs().ca,
               "-verify_return_error", "-servername", "localhost", "-quiet"},
              certs().file("s_client.err"));
        client.send("ping\n");
        const std::string out = co_await output_until(client, "");  // to its end
        REQUIRE(out == "pong: ping\n");
        const int status = co_await exit_status(client);
        INFO(client.errors());
        REQUIRE(status == 0);  // s_client: 0 after close_notify, 1 after an EOF without one
        srv.close();
        co_await srv.wait_closed();
    };
    run_checked(body);
    REQUIRE(handled);
}

TEST_CASE("16 MiB from an aio client to s_server arrive whole") {
    const std::uint16_t port = free_port();
    child server;
    start(server,
          {"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port), "-cert", certs().server_cert, "-key",
           certs().server_key, "-naccept", "1", "-quiet"},
          certs().file("s_server.err"));
    wait_listening(server, port);
    const std::string data = pattern(16 << 20);
    auto body = [&]() -> aio::task<> {
        aio::stream_pair stream = co_await aio::open_connection("127.0.0.1", port, {.ssl = client_ctx(), .server_hostname = "localhost"});
        aio::stream_writer& writer = stream.second;
        auto sending = [&]() -> aio::task<> {
            for (std::size_t at = 0; at < data.size(); at += 1 << 20) {
                writer.write(std::string_view(data).substr(at, 1 << 20));
                co_await writer.drain();
            }
        };
        aio::task_handle<> sent = aio::create_task(sending());
        std::string got;
        char buffer[65536];
        while (got.size() < data.size()) {
            const ssize_t n = ::read(server.stdout_fd, buffer, sizeof buffer);
            if (n > 0) got.append(buffer, static_cast<std::size_t>(n));
            else if (n == 0) break;
            else co_await aio::wait_readable(server.stdout_fd);
        }
        co_await sent;
        REQUIRE(got.size() == data.size());
        REQUIRE(got == data);
        writer.close();
        co_await writer.wait_closed();
    };
    run_checked(body, 60s);
}

TEST_CASE("16 MiB from s_server reach an aio client whole, and its close_notify is a clean EOF") {
    const std::string data = pattern(16 << 20, 3);
    const std::string file = certs().file("data.txt");
    std::ofstream(file, std::ios::binary) << data;
    const std::uint16_t port = free_port();
    child server;
    start(server,
          {"openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(port), "-cert", certs().server_cert, "-key",
           certs().server_key, "-naccept", "1", "-quiet"},
          certs().file("s_server.err"), file);  // sends the file, then shuts down with close_notify
    wait_listening(server, port);
    auto body = [&]() -> aio::task<> {
        auto [reader, writer] = co_await aio::open_connection("127.0.0.1", port, {.ssl = client_ctx(), .server_hostname = "localhost"});
        // s_server blocks in SSL_read when it saw the socket readable as it began to send
        // (its first select): a line from us lets it go on.
        writer.write("go\n");
        const std::string got = co_await reader.read();  // to EOF: no error
        REQUIRE(got.size() == data.size());
        REQUIRE(got == data);
        REQUIRE(reader.at_eof());
        REQUIRE(reader.exception() == nullptr);
        REQUIRE(writer.is_closing());  // asyncio: the peer's close_notify closes the transport
        co_await writer.wait_closed();
    };
    run_checked(body, 60s);
}

TEST_CASE("16 MiB from s_client reach an aio server whole") {
    const std::string data = pattern(16 << 20, 5);
    const std::string file = certs().file("upload.txt");
    std::ofstream(file, std::ios::binary) << data;
    std::string got;
    auto body = [&]() -> aio::task<> {
        auto handler = [&](aio::stream_reader reader, aio::stream_writer writer) -> aio::task<> {
            got = co_await reader.readexactly(static_cast<std::ptrdiff_t>(data.size()));
            writer.close();
            co_await writer.wait_closed();
        };
        aio::server srv = co_await aio::start_server(handler, "127.0.0.1", 0, {.ssl = server_ctx()});
        child client;
        start(client,
              {"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port_of(srv)), "-CAfile", certs().ca,
               "-verify_return_error", "-servername", "localhost", "-quiet"},
              certs().file("s_client.err"), file);
        const int status = co_await exit_status(client);
        INFO(client.errors());
        REQUIRE(status == 0);
        srv.close();
        co_await srv.wait_closed();
    };
    run_checked(body, 60s);
    REQUIRE(got.size() == data.size());
    REQUIRE(got == data);
}

TEST_CASE("an aio server's client handshakes refused by s_client for an untrusted certificate are reported, and the handler never runs") {
    bool handled = false;
    reports seen;
    auto body = [&]() -> aio::task<> {
        seen.listen();
        auto handler = [&](aio::stream_reader, aio::stream_writer) -> aio::task<> {
            handled = true;
            co_return;
        };
        const aio::ssl_context untrusted = server_context(true);
        aio::server srv = co_await aio::start_server(handler, "127.0.0.1", 0, {.ssl = untrusted});
        child client;
        start(client,
              {"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port_of(srv)), "-CAfile", certs().ca,
               "-verify_return_error", "-servername", "localhost", "-quiet"},
              certs().file("s_client.err"));
        const int status = co_await exit_status(client);
        REQUIRE(status != 0);
        for (int i = 0; i < 200 && seen.messages.empty(); ++i) co_await aio::sleep(5ms);
        srv.close();
        co_await srv.wait_closed();
    };
    run_checked(body);
    REQUIRE_FALSE(handled);
    REQUIRE(seen.messages == std::vector<std::string>{"SSL handshake failed"});
    REQUIRE_THROWS_AS(std::rethrow_exception(seen.errors.at(0)), aio::ssl_error);
}

// --- aio against aio

namespace {

// An aio TLS server whose connections run `handler`; its port.
template <class H>
aio::task<aio::server> tls_server(H& handler, const aio::ssl_context& ctx, aio::server_options options = {}) {
    options.ssl = ctx;
    co_return co_await aio::start_server(handler, "127.0.0.1", 0, options);
}

}  // namespace

TEST_CASE("an aio client and an aio server handshake, negotiate ALPN and echo") {
    auto body = [&]() -> aio::task<> {
        std::string server_alpn;
        auto handler = [&](aio::stream_reader reader, aio::stream_writer writer) -> aio::task<> {
            server_alpn = std::any_cast<std::string>(writer.get_extra_info("alpn_protocol"));
            for (;;) {
                std::string line = co_await reader.readline();
                if (line.empty()) break;
                writer.write(line);
            }
            writer.close();
        };
        aio::ssl_context sctx = server_context();
        sctx.set_alpn_protocols({"h2", "http/1.1"});
        aio::server srv = co_await tls_server(handler, sctx);
        aio::ssl_context cctx = client_context();
        cctx.set_alpn_protocols({"spdy/1", "http/1.1"});
        auto [reader, writer] = co_await aio::open_connection("127.0.0.1", port_of(srv), {.ssl = cctx, .server_hostname = "localhost"});
        REQUIRE(std::any_cast<std::string>(writer.get_extra_info("alpn_protocol")) == "http/1.1");
        for (int i = 0; i < 100; ++i) {
            const std::string line = "line " + std::to_string(i) + "\n";
            writer.write(line);
            std::string back = co_await reader.readline();
            REQUIRE(back == line);
        }
        REQUIRE(server_alpn == "http/1.1");
        writer.close();
        co_await writer.wait_closed();
        srv.close();
        co_await srv.wait_closed();
    };
    run_checked(body);
}

TEST_CASE("16 MiB each way between an aio client and an aio server arrive whole") {
    const std::string up = pattern(16 << 20, 1);
    const std::string down = pattern(16 << 20, 2);
    auto body = [&]() -> aio::task<> {
        std::string got_up;
        auto handler = [&](aio::stream_reader reader, aio::stream_writer writer) -> aio::task<> {
            auto sending = [&]() -> aio::task<> {
                for (std::size_t at = 0; at < down.size(); at += 3 << 20) {
                    writer.write(std::string_view(down).substr(at, 3 << 20));
                    co_await writer.drain();
                }
            };
            aio::task_handle<> sent = aio::create_task(sending());
            got_up = co_await reader.readexactly(static_cast<std::ptrdiff_t>(up.size()));
            co_await sent;
            writer.close();
            co_await writer.wait_closed();
        };
        aio::server srv = co_await tls_server(handler, server_ctx());
        aio::stream_pair stream = co_await aio::open_connection("127.0.0.1", port_of(srv), {.ssl = client_ctx(), .server_hostname = "localhost"});
        aio::stream_reader& reader = stream.first;  // clang 14 captures no structured binding
        aio::stream_writer& writer = stream.second;
        auto sending = [&]() -> aio::task<> {
            for (std::size_t at = 0; at < up.size(); at += 1 << 20) {
                writer.write(std::string_view(up).substr(at, 1 << 20));
                co_await writer.drain();
            }
        };
        aio::task_handle<> sent = aio::create_task(sending());
        const std::string got_down = co_await reader.read();  // the server's close_notify ends it cleanly
        co_await sent;
        REQUIRE(got_down.size() == down.size());
        REQUIRE(got_down == down);
        REQUIRE(got_up.size() == up.size());
        REQUIRE(got_up == up);
        co_await writer.wait_closed();
        srv.close();
        co_await srv.wait_closed();
    };
    run_checked(body, 60s);
}

TEST_CASE("a certificate for another name is refused with the verification's reason") {
    auto body = [&]() -> aio::task<> {
        reports seen;
        seen.listen();
        auto handler = [&](aio::stream_reader, aio::stream_writer) -> aio::task<> { co_return; };
        aio::server srv = co_await tls_server(handler, server_ctx());
        std::string what;
        long code = 0;
        try {
            (void)co_await aio::open_connection("127.0.0.1", port_of(srv), {.ssl = client_ctx(), .server_hostname = "wrong.example"});
        } catch (const aio::ssl_certificate_error& e) {
            what = e.what();
            code = e.verify_code();
        }
        REQUIRE(what == "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch, certificate is not valid for "
                        "'wrong.example'.");
        REQUIRE(code == X509_V_ERR_HOSTNAME_MISMATCH);
        // An address is checked against the certificate's IP addresses.
        what.clear();
        try {
            (void)co_await aio::open_connection("127.0.0.1", port_of(srv), {.ssl = client_ctx(), .server_hostname = "127.0.0.2"});
        } catch (const aio::ssl_certificate_error& e) {
            what = e.what();
        }
        REQUIRE(has(what, {"IP address mismatch"}));
        // server_hostname defaults to the host: 127.0.0.1 is in the certificate.
        auto [reader, writer] = co_await aio::open_connection("127.0.0.1", port_of(srv), {.ssl = client_ctx()});
        writer.close();
        co_await writer.wait_closed();
        for (int i = 0; i < 100 && seen.messages.size() < 2; ++i) co_await aio::sleep(5ms);
        REQUIRE(seen.messages.size() == 2);  // the server saw the two refusals
        srv.close();
        co_await srv.wait_closed();
    };
    run_checked(body);
}

TEST_CASE("an untrusted certificate is refused, and an opted-out client accepts it") {
    auto body = [&]() -> aio::task<> {
        reports seen;
        seen.listen();
        auto handler = [&](aio::stream_reader, aio::stream_writer writer) -> aio::task<> {
            writer.write("hi\n");
            writer.close();
            co_return;
        };
        const aio::ssl_context untrusted = server_context(true);
        aio::server srv = co_await tls_server(handler, untrusted);
        std::string what;
        try {
            (void)co_await aio::open_connection("127.0.0.1", port_of(srv), {.ssl = client_ctx(), .server_hostname = "localhost"});
        } catch (const aio::ssl_certificate_error& e) {
            what = e.what();
        }
        REQUIRE(what == "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate");
        aio::ssl_context trusting = aio::ssl_context::client();
        trusting.check_hostname(false);
        trusting.verify_mode(aio::verify::none);
        auto [reader, writer] = co_await aio::open_connection("127.0.0.1", port_of(srv), {.ssl = trusting});
        std::string line = co_await reader.readline();
        REQUIRE(line == "hi\n");
        const auto cert = std::any_cast<aio::peer_certificate>(writer.get_extra_info("peercert"));
        REQUIRE(cert.subject.empty());  // Python: {} when not validated
        writer.close();
        co_await writer.wait_closed();
        srv.close();
        co_await srv.wait_closed();
    };
    run_checked(body);
}

TEST_CASE("a minimum version the peer cannot meet fails the handshake on both sides") {
    auto body = [&]() -> aio::task<> {
        reports seen;
        seen.listen();
        bool handled = false;
        auto handler = [&](aio::stream_reader, aio::stream_writer) -> aio::task<> {
            handled = true;
            co_return;
        };
        aio::ssl_context sctx = server_context();
        sctx.set_minimum_version(aio::tls_version::tls1_3);
        aio::server srv = co_await tls_server(handler, sctx);
        aio::ssl_context cctx = client_context();
        cctx.set_maximum_version(aio::tls_version::tls1_2);
        std::string what;
        try {
            (void)co_await aio::open_connection("127.0.0.1", port_of(srv), {.ssl = cctx, .server_hostname = "localhost"});
        } catch (const aio::ssl_error& e) {
            what = e.what();
        }
        REQUIRE(what == "[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version");
        for (int i = 0; i < 100 && seen.messages.empty(); ++i) co_await aio::sleep(5ms);
        REQUIRE(seen.messages == std::vector<std::string>{"SSL handshake failed"});
        std::string server_what;
        try {
            std::rethrow_exception(seen.errors.at(0));
        } catch (const aio::ssl_error& e) {
            server_what = e.what();
        }
        REQUIRE(server_what == "[SSL: UNSUPPORTED_PROTOCOL] unsupported protocol");
        REQUIRE_FALSE(handled);
        srv.close();
        co_await srv.wait_closed();
    };
    run_checked(body);
}

TEST_CASE("an EOF without close_notify is an ssl_eof_error, not a clean end") {
    auto body = [&]() -> aio::task<> {
        aio::event read_it;
        auto handler = [&](aio::stream_reader, aio::stream_writer writer) -> aio::task<> {
            writer.write("partial\n");
            co_await read_it.wait();  // an error set ends reads at once, before what is buffered (asyncio)
            ::shutdown(std::any_cast<int>(writer.get_extra_info("socket")), SHUT_WR);  // a FIN, no close_notify
            co_await aio::sleep(50ms);
            writer.close();
        };
        aio::server srv = co_await tls_server(handler, server_ctx());
        auto [reader, writer] = co_await aio::open_connection("127.0.0.1", port_of(srv), {.ssl = client_ctx(), .server_hostname = "localhost"});
        std::string line = co_await reader.readline();
        REQUIRE(line == "partial\n");
        read_it.set();
        std::string what;
        try {
            (void)co_await reader.read();
        } catch (const aio::ssl_eof_error& e) {
            what = e.what();
        }
        REQUIRE(what == "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol");
        REQUIRE_FALSE(reader.at_eof());
        co_await writer.wait_closed();
        srv.close();
        co_await srv.wait_closed();
    };
    run_checked(body);
}

TEST_CASE("a peer that never answers the ClientHello makes the handshake time out") {
    auto body = [&]() -> aio::task<> {
        aio::event done;
        auto silent = [&](aio::stream_reader reader, aio::stream_writer) -> aio::task<> {
            (void)co_await reader.read();  // until the client gives up
            done.set();
        };
        aio::server srv = co_await aio::start_server(silent, "127.0.0.1", 0);  // plain TCP
        std::string what;
        try {
            (void)co_await aio::open_connection("127.0.0.1", port_of(srv),
                                                {.ssl = client_ctx(), .server_hostname = "localhost", .ssl_handshake_timeout = 200ms});
        } catch (const aio::connection_aborted_error& e) {
            what = e.what();
        }
        REQUIRE(has(what, {"SSL handshake is taking longer than 0.2 seconds: aborting the connection"}));
        co_await done.wait();
        srv.close();
        co_await srv.wait_closed();
    };
    run_checked(body);
}

TEST_CASE("a client that never sends its hello times out on the server, is reported, and is closed") {
    auto body = [&]() -> aio::task<> {
        reports seen;
        seen.listen();
        bool handled = false;
        auto handler = [&](aio::stream_reader, aio::stream_writer) -> aio::task<> {
            handled = true;
            co_return;
        };
        aio::server srv = co_await tls_server(handler, server_ctx(), {.ssl_handshake_timeout = 150ms});
        auto [reader, writer] = co_await aio::open_connection("127.0.0.1", port_of(srv));  // plain, silent
        const std::string got = co_await reader.read();  // the server closes it
        REQUIRE(got.empty());
        REQUIRE(seen.messages == std::vector<std::string>{"SSL handshake failed"});
        REQUIRE_THROWS_AS(std::rethrow_exception(seen.errors.at(0)), aio::connection_aborted_error);
        REQUIRE_FALSE(handled);
        writer.close();
        srv.close();
        co_await srv.wait_closed();
    };
    run_checked(body);
}

TEST_CASE("start_tls upgrades a stream in place, and the plaintext buffered before stays readable") {
    auto body = [&]() -> aio::task<> {
        aio::ssl_context sctx = server_context();
        std::string secret;
        auto handler = [&](aio::stream_reader reader, aio::stream_writer writer) -> aio::task<> {
            writer.write("220 ready\n");
            std::string command = co_await reader.readline();
            REQUIRE(command == "STARTTLS\n");
            writer.write("220 go ahead\nbuffered plaintext\n");  // one segment: both lines arrive together
            co_await writer.start_tls(sctx);
            REQUIRE_FALSE(writer.can_write_eof());
            secret = co_await reader.readline();
            writer.write("ok " + secret);
            writer.close();
            co_await writer.wait_closed();
        };
        aio::server srv = co_await aio::start_server(handler, "127.0.0.1", 0);
        auto [reader, writer] = co_await aio::open_connection("127.0.0.1", port_of(srv));
        std::string banner = co_await reader.readline();
        REQUIRE(banner == "220 ready\n");
        REQUIRE(writer.can_write_eof());
        writer.write("STARTTLS\n");
        std::string go = co_await reader.readline();  // "buffered plaintext" came with it
        REQUIRE(go == "220 go ahead\n");
        co_await writer.start_tls(client_ctx(), {.server_hostname = "localhost"});
        REQUIRE(std::any_cast<std::string>(writer.get_extra_info("version")).starts_with("TLSv1."));
        std::string kept = co_await reader.readline();  // read before the upgrade, still there
        REQUIRE(kept == "buffered plaintext\n");
        writer.write("the secret\n");
        std::string reply = co_await reader.readline();
        REQUIRE(reply == "ok the secret\n");
        std::string end = co_await reader.read();
        REQUIRE(end.empty());
        REQUIRE(secret == "the secret\n");
        std::string what;
        try {
            co_await writer.start_tls(client_ctx(), {.server_hostname = "localhost"});
        } catch (const aio::runtime_error& e) {
            what = e.what();
        }
        REQUIRE(what == "start_tls(): the stream already uses TLS");
        co_await writer.wait_closed();
        srv.close();
        co_await srv.wait_closed();
    };
    run_checked(body);
}

TEST_CASE("a cancelled read on a TLS stream loses nothing") {
    auto body = [&]() -> aio::task<> {
        aio::event more;
        auto handler = [&](aio::stream_reader reader, aio::stream_writer writer) -> aio::task<> {
            writer.write("01234");
            co_await more.wait();
            writer.write("56789");
            (void)co_await reader.read();
            writer.close();
        };
        aio::server srv = co_await tls_server(handler, server_ctx());
        auto [reader, writer] = co_await aio::open_connection("127.0.0.1", port_of(srv), {.ssl = client_ctx(), .server_hostname = "localhost"});
        bool timed_out = false;
        try {
            (void)co_await aio::wait_for(reader.readexactly(10), 100ms);
        } catch (const aio::timeout_error&) {
            timed_out = true;
        }
        REQUIRE(timed_out);
        more.set();
        std::string all = co_await reader.readexactly(10);
        REQUIRE(all == "0123456789");
        writer.close();
        co_await writer.wait_closed();
        srv.close();
        co_await srv.wait_closed();
    };
    run_checked(body);
}

TEST_CASE("a stream dropped without close still sends close_notify, and many connections leave no descriptor behind") {
    auto body = [&]() -> aio::task<> {
        int clean = 0;
        auto handler = [&](aio::stream_reader reader, aio::stream_writer writer) -> aio::task<> {
            std::string line = co_await reader.readline();
            writer.write(line);
            std::string end = co_await reader.read();  // the client's close_notify: a clean EOF
            if (end.empty() && reader.exception() == nullptr) ++clean;
            writer.close();
            co_await writer.wait_closed();
        };
        aio::server srv = co_await tls_server(handler, server_ctx());
        for (int i = 0; i < 20; ++i) {
            auto [reader, writer] = co_await aio::open_connection("127.0.0.1", port_of(srv), {.ssl = client_ctx(), .server_hostname = "localhost"});
            writer.write("x\n");
            std::string back = co_await reader.readline();
            REQUIRE(back == "x\n");
        }  // the handles go: each transport closes itself, close_notify first
        srv.close();
        co_await srv.wait_closed();
        REQUIRE(clean == 20);
    };
    run_checked(body);
}
