// The seed's countsync.py: the same three counts with a blocking sleep — about 3 seconds.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

using namespace std::chrono_literals;

void count() {
    std::puts("One");
    std::this_thread::sleep_for(1s);
    std::puts("Two");
}

int main(int, char** argv) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 3; ++i) count();
    std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    std::printf("%s executed in %0.2f seconds.\n", std::filesystem::path(argv[0]).filename().c_str(), elapsed.count());
}
