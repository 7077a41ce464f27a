// Exits 0 when aio::tls links: a client and a server context can be made.
#include <aio/net/streams.hpp>
#include <aio/tls.hpp>

#include <cstdio>

int main() {
    aio::ssl_context client = aio::ssl_context::client();
    aio::ssl_context server = aio::ssl_context::server();
    aio::connection_options options{.ssl = client, .server_hostname = "localhost"};
    std::printf("aio tls consumer: %d %d\n", client.check_hostname() ? 1 : 0, server.server_side() ? 1 : 0);
    return options.ssl && client.check_hostname() && server.server_side() ? 0 : 1;
}
