// A line-based chat server: every line a client sends goes to every other client.
// Three clients come and go in this program — one leaves cleanly, one vanishes with a
// reset — and the first prints what it hears.
#include <aio/aio.hpp>

#include <sys/socket.h>

#include <any>
#include <cstdio>
#include <list>
#include <string>

namespace {

struct chat_room {
    std::list<aio::stream_writer*> members;

    void broadcast(const std::string& line, const aio::stream_writer* from) {
        for (aio::stream_writer* w : members)
            if (w != from) w->write(line);  // never waits; a slow reader is drained below
    }
};

chat_room room;

aio::task<> member(aio::stream_reader reader, aio::stream_writer writer) {
    std::string name = co_await reader.readline();
    if (name.empty()) co_return;
    name.pop_back();  // the '\n'
    auto me = room.members.insert(room.members.end(), &writer);
    room.broadcast(name + " joined\n", &writer);
    std::string goodbye = name + " left\n";
    try {
        for (;;) {
            std::string line = co_await reader.readline();
            if (line.empty()) break;  // end of stream: a clean goodbye
            room.broadcast(name + ": " + line, &writer);
            co_await writer.drain();
        }
    } catch (const aio::connection_reset_error&) {
        goodbye = name + " vanished\n";
    }
    room.members.erase(me);
    room.broadcast(goodbye, &writer);
    writer.close();
}

aio::task<aio::stream_pair> join(std::uint16_t port, const std::string& name) {
    auto pair = co_await aio::open_connection("127.0.0.1", port);
    pair.second.write(name + "\n");
    co_await pair.second.drain();
    co_return pair;
}

aio::task<> hear(aio::stream_reader& reader) {
    std::string line = co_await reader.readline();
    std::printf("alice hears: %s", line.c_str());
}

aio::task<> main_task() {
    aio::server server = co_await aio::start_server(member, "127.0.0.1", 0);
    const std::uint16_t port = server.sockets().at(0).port();

    auto [alice_in, alice_out] = co_await join(port, "alice");
    auto [bob_in, bob_out] = co_await join(port, "bob");
    co_await hear(alice_in);  // bob joined

    bob_out.write("hi everyone\n");
    co_await hear(alice_in);

    auto [carol_in, carol_out] = co_await join(port, "carol");
    co_await hear(alice_in);  // carol joined
    // carol's connection dies: a reset (SO_LINGER 0), not a goodbye
    const int fd = std::any_cast<int>(carol_out.get_extra_info("socket"));
    const linger reset{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    carol_out.close();
    co_await hear(alice_in);  // carol vanished

    bob_out.close();  // a clean goodbye
    co_await bob_out.wait_closed();
    co_await hear(alice_in);

    alice_out.close();
    co_await alice_out.wait_closed();
    server.close();
    co_await server.wait_closed();
    std::puts("the room is empty");
}

}  // namespace

int main() { aio::run(main_task()); }
