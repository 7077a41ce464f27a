// aio::getaddrinfo (include/aio/net/getaddrinfo.hpp): a numeric host answered at once,
// without the executor (asyncio's _ipaddr_info); every other name looked up on the
// default executor; gai_error; services, hints; cancellation of a lookup.
//
// Only local resolution: the machine resolves "localhost" from /etc/hosts, and names
// under .invalid (RFC 6761) fail at once.

#include <aio/create_task.hpp>
#include <aio/errors.hpp>
#include <aio/event_loop.hpp>
#include <aio/exception_context.hpp>
#include <aio/net/getaddrinfo.hpp>
#include <aio/net/socket_address.hpp>
#include <aio/os_error.hpp>
#include <aio/run.hpp>
#include <aio/sleep.hpp>
#include <aio/task.hpp>
#include <aio/task_handle.hpp>
#include <aio/thread_pool.hpp>
#include <aio/to_thread.hpp>
#include <aio/wait_for.hpp>

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include "support/catch.hpp"
#include "support/descriptors.hpp"
#include "support/threads.hpp"
#include "support/trace.hpp"

using namespace std::chrono_literals;
using aio_test::trace;
using lines = std::vector<std::string>;
using answer = std::vector<aio::address_info>;

static_assert(std::is_base_of_v<aio::os_error, aio::gai_error>);  // Python's gaierror is an OSError

using aio_test::open_descriptors;

namespace {

// EAI_NONAME, or what a resolver with no DNS server to ask may say instead.
bool name_not_found(int code) {
#ifdef EAI_NODATA
    if (code == EAI_NODATA) return true;
#endif
    return code == EAI_NONAME || code == EAI_AGAIN;
}

bool is_loopback(const aio::address_info& a) {
    if (a.family == AF_INET) return a.address.host().rfind("127.", 0) == 0;
    if (a.family == AF_INET6) return a.address.host() == "::1";
    return false;
}

// Whether awaiting `lookup` suspended the task: a sibling created before it logs
// "sibling" in its first step, which comes before "answered" only if the task yielded.
lines order_of(aio::task<answer> lookup, answer& out) {
    trace log;
    auto sibling = [&]() -> aio::task<> {
        log("sibling");
        co_return;
    };
    auto program = [&]() -> aio::task<> {
        auto h = aio::create_task(sibling());
        out = co_await std::move(lookup);
        log("answered");
        co_await h;
    };
    aio::run(program());
    return log.events;
}

}  // namespace

TEST_CASE("a numeric IPv4 host with a socket type is answered at once, without the awaiting task suspending") {
    const std::size_t before = open_descriptors();
    answer r;
    const lines order = order_of(aio::getaddrinfo("127.0.0.1", 8080, {.type = SOCK_STREAM}), r);
    REQUIRE(order == lines{"answered", "sibling"});
    REQUIRE(r.size() == 1);
    REQUIRE(r[0].family == AF_INET);
    REQUIRE(r[0].type == SOCK_STREAM);
    REQUIRE(r[0].protocol == IPPROTO_TCP);
    REQUIRE(r[0].canonical_name.empty());
    REQUIRE(r[0].address.to_string() == "127.0.0.1:8080");
    REQUIRE(r[0].address == aio::socket_address::ip("127.0.0.1", 8080));
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("a numeric IPv6 host with a socket type is answered at once, and a datagram type gets UDP") {
    answer r;
    const lines order = order_of(aio::getaddrinfo("::1", 443, {.type = SOCK_DGRAM}), r);
    REQUIRE(order == lines{"answered", "sibling"});
    REQUIRE(r.size() == 1);
    REQUIRE(r[0].family == AF_INET6);
    REQUIRE(r[0].type == SOCK_DGRAM);
    REQUIRE(r[0].protocol == IPPROTO_UDP);
    REQUIRE(r[0].address.to_string() == "[::1]:443");
}

TEST_CASE("numeric hosts are answered without the default executor: they still are after shutdown_default_executor, which a lookup needs") {
    const std::size_t before = open_descriptors();
    {
        aio::event_loop loop;
        loop.run_until_complete([]() -> aio::task<> {
            auto& l = aio::get_running_loop();
            co_await l.shutdown_default_executor();  // from here on, run_in_executor(nullptr) throws
            answer v4 = co_await aio::getaddrinfo("127.0.0.1", 80, {.type = SOCK_STREAM});
            answer v6 = co_await aio::getaddrinfo("::1", 80, {.family = AF_INET6, .type = SOCK_DGRAM});
            answer same_family = co_await aio::getaddrinfo("10.1.2.3", 5, {.family = AF_INET, .type = SOCK_STREAM});
            REQUIRE(v4.size() == 1);
            REQUIRE(v4[0].address.to_string() == "127.0.0.1:80");
            REQUIRE(v6.size() == 1);
            REQUIRE(v6[0].address.to_string() == "[::1]:80");
            REQUIRE(same_family.size() == 1);
            REQUIRE(same_family[0].address.to_string() == "10.1.2.3:5");
            bool refused = false;
            try {
                (void)co_await aio::getaddrinfo("localhost", 80, {.type = SOCK_STREAM});
            } catch (const aio::runtime_error&) {
                refused = true;  // a name needs the executor, which is gone
            }
            REQUIRE(refused);
        }());
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("a numeric host without a socket type is looked up on the executor, as asyncio's _ipaddr_info declines it too") {
    answer r;
    const lines order = order_of(aio::getaddrinfo("127.0.0.1", 80), r);
    REQUIRE(order == lines{"sibling", "answered"});
    REQUIRE_FALSE(r.empty());
    for (const auto& a : r) {
        REQUIRE(a.family == AF_INET);
        REQUIRE(a.address.to_string() == "127.0.0.1:80");
    }
}

TEST_CASE("the numeric answer is the one the C library's lookup gives") {
    auto program = []() -> aio::task<> {
        for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
            for (const char* host : {"127.0.0.1", "::1"}) {
                answer quick = co_await aio::getaddrinfo(host, 8080, {.type = type});
                answer looked_up = co_await aio::getaddrinfo(host, "8080", {.type = type});
                REQUIRE(quick.size() == 1);
                REQUIRE(looked_up.size() == 1);
                REQUIRE(quick[0].family == looked_up[0].family);
                REQUIRE(quick[0].type == looked_up[0].type);
                REQUIRE(quick[0].protocol == looked_up[0].protocol);
                REQUIRE(quick[0].address == looked_up[0].address);
            }
        }
    };
    aio::run(program());
}

TEST_CASE("localhost resolves to a loopback address through the default executor") {
    const std::size_t before = open_descriptors();
    answer r;
    const lines order = order_of(aio::getaddrinfo("localhost", 8080, {.type = SOCK_STREAM}), r);
    REQUIRE(order == lines{"sibling", "answered"});  // the task waited for the worker
    REQUIRE_FALSE(r.empty());
    for (const auto& a : r) {
        REQUIRE(is_loopback(a));
        REQUIRE(a.type == SOCK_STREAM);
        REQUIRE(a.address.port() == 8080);
    }
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("a name under .invalid throws aio::gai_error with EAI_NONAME, naming the host and the C library's message") {
    const std::size_t before = open_descriptors();
    auto program = []() -> aio::task<> {
        bool caught = false;
        try {
            (void)co_await aio::getaddrinfo("no-such-host.invalid", 80, {.type = SOCK_STREAM});
        } catch (const aio::gai_error& e) {
            caught = true;
            const int code = e.gai_code();
            REQUIRE(name_not_found(code));
            REQUIRE(e.gai_error_code().value() == code);
            REQUIRE(&e.gai_error_code().category() == &aio::gai_category());
            REQUIRE(std::string(aio::gai_category().name()) == "getaddrinfo");
            const std::string what = e.what();
            REQUIRE(what.find("no-such-host.invalid") != std::string::npos);
            REQUIRE(what.find(::gai_strerror(code)) != std::string::npos);
        }
        REQUIRE(caught);
    };
    aio::run(program());
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("a gai_error is caught as an aio::os_error, as Python's gaierror is an OSError") {
    auto program = []() -> aio::task<bool> {
        try {
            (void)co_await aio::getaddrinfo("no-such-host.invalid", "80");
        } catch (const aio::os_error&) {
            co_return true;
        }
        co_return false;
    };
    REQUIRE(aio::run(program()));
}

TEST_CASE("a service name is looked up in the services database: http is port 80, and a numeric service is its number") {
    auto program = []() -> aio::task<> {
        answer http = co_await aio::getaddrinfo("127.0.0.1", "http", {.type = SOCK_STREAM});
        REQUIRE(http.size() == 1);
        REQUIRE(http[0].address.to_string() == "127.0.0.1:80");
        REQUIRE(http[0].protocol == IPPROTO_TCP);
        answer by_name = co_await aio::getaddrinfo("localhost", "http", {.family = AF_INET, .type = SOCK_STREAM});
        REQUIRE_FALSE(by_name.empty());
        for (const auto& a : by_name) REQUIRE(a.address.port() == 80);
        answer number = co_await aio::getaddrinfo("127.0.0.1", "8080", {.type = SOCK_STREAM});
        REQUIRE(number.size() == 1);
        REQUIRE(number[0].address.port() == 8080);
        int code = 0;
        try {
            (void)co_await aio::getaddrinfo("127.0.0.1", "no-such-service", {.type = SOCK_STREAM});
        } catch (const aio::gai_error& e) {
            code = e.gai_code();
            REQUIRE(std::string(e.what()).find("no-such-service") != std::string::npos);
        }
        REQUIRE(code == EAI_SERVICE);
    };
    aio::run(program());
}

TEST_CASE("hints.family keeps only that family, and a numeric host of the other family is refused with gai_error") {
    auto program = []() -> aio::task<> {
        answer v4 = co_await aio::getaddrinfo("localhost", 80, {.family = AF_INET});
        REQUIRE_FALSE(v4.empty());
        for (const auto& a : v4) {
            REQUIRE(a.family == AF_INET);
            REQUIRE(a.address.family() == AF_INET);
            REQUIRE(is_loopback(a));
        }
        answer v4_stream = co_await aio::getaddrinfo("localhost", 80, {.family = AF_INET, .type = SOCK_STREAM});
        REQUIRE_FALSE(v4_stream.empty());
        for (const auto& a : v4_stream) REQUIRE(a.type == SOCK_STREAM);
        // A numeric host whose family the hints exclude is not answered at once: the
        // lookup says why, as asyncio leaves it to socket.getaddrinfo.
        for (auto [host, family] : {std::pair{"127.0.0.1", AF_INET6}, std::pair{"::1", AF_INET}}) {
            bool refused = false;
            try {
                (void)co_await aio::getaddrinfo(host, 80, {.family = family, .type = SOCK_STREAM});
            } catch (const aio::gai_error& e) {
                refused = true;
                REQUIRE(std::string(e.what()).find(host) != std::string::npos);
            }
            REQUIRE(refused);
        }
    };
    aio::run(program());
}

TEST_CASE("an empty host is the wildcard with AI_PASSIVE and the loopback without it") {
    auto program = []() -> aio::task<> {
        answer passive = co_await aio::getaddrinfo("", 8080, {.family = AF_INET, .type = SOCK_STREAM, .flags = AI_PASSIVE});
        REQUIRE(passive.size() == 1);
        REQUIRE(passive[0].address.to_string() == "0.0.0.0:8080");
        answer active = co_await aio::getaddrinfo("", 8080, {.family = AF_INET, .type = SOCK_STREAM});
        REQUIRE(active.size() == 1);
        REQUIRE(active[0].address.to_string() == "127.0.0.1:8080");
    };
    aio::run(program());
}

TEST_CASE("AI_CANONNAME puts the canonical name on the first entry") {
    auto program = []() -> aio::task<> {
        answer r = co_await aio::getaddrinfo("localhost", 80, {.family = AF_INET, .type = SOCK_STREAM, .flags = AI_CANONNAME});
        REQUIRE_FALSE(r.empty());
        REQUIRE(r[0].canonical_name == "localhost");
    };
    aio::run(program());
}

TEST_CASE("a lookup still queued behind busy workers is cancelled by wait_for's timeout, and the loop shuts down cleanly") {
    const std::size_t before = open_descriptors();
    aio_test::gate release;
    std::atomic<int> started{0};
    std::vector<std::string> reports;
    bool timed_out = false;
    auto block = [&] {
        ++started;
        release.wait();
    };
    auto program = [&]() -> aio::task<> {
        auto& loop = aio::get_running_loop();
        loop.set_exception_handler([&](aio::event_loop&, const aio::exception_context& c) { reports.push_back(c.message); });
        const std::size_t workers = aio::thread_pool::default_max_workers();
        std::vector<aio::task_handle<>> busy;
        for (std::size_t i = 0; i < workers; ++i) busy.push_back(aio::create_task(aio::to_thread(block)));
        while (started < static_cast<int>(workers)) co_await aio::sleep(1ms);  // every worker is taken
        try {
            (void)co_await aio::wait_for(aio::getaddrinfo("localhost", 80, {.type = SOCK_STREAM}), 20ms);
        } catch (const aio::timeout_error&) {
            timed_out = true;
        }
        release.open();
        for (auto& h : busy) co_await h;
        // The pool is free again, and answers the next lookup.
        answer r = co_await aio::getaddrinfo("localhost", 80, {.type = SOCK_STREAM});
        REQUIRE_FALSE(r.empty());
    };
    aio::run(program());
    REQUIRE(timed_out);
    REQUIRE(reports.empty());
    REQUIRE(open_descriptors() == before);
}

TEST_CASE("lookups cancelled as soon as they are submitted, by wait_for or by cancel, end the await at once and drop their answers") {
    const std::size_t before = open_descriptors();
    std::vector<std::string> reports;
    int timeouts = 0, cancels = 0;
    auto lookup = []() -> aio::task<> { (void)co_await aio::getaddrinfo("localhost", "http"); };
    auto program = [&]() -> aio::task<> {
        aio::get_running_loop().set_exception_handler(
            [&](aio::event_loop&, const aio::exception_context& c) { reports.push_back(c.message); });
        for (int i = 0; i < 20; ++i) {
            try {
                co_await aio::wait_for(lookup(), 1us);
            } catch (const aio::timeout_error&) {
                ++timeouts;
            }
            auto h = aio::create_task(lookup());
            for (int k = 0; k < i % 3; ++k) co_await aio::sleep(0s);
            h.cancel();
            try {
                co_await h;
            } catch (const aio::cancelled_error&) {
                ++cancels;
            }
        }
    };
    aio::run(program());  // and its shutdown waits for the lookups still running
    REQUIRE(timeouts + cancels > 0);
    REQUIRE(reports.empty());
    REQUIRE(open_descriptors() == before);
}
