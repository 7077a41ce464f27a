#pragma once
// Zombies: a pending task whose frame close() had to destroy while handles still
// refer to it (its frame held a handle to itself, or tasks held each other's). The
// frame's memory stays, holding a bare cancelled task_state, until the last handle
// goes.
//
// The frame is destroyed in three steps, and the state must survive the middle one:
// the promise (with its task_state) is destroyed, then the frame's parameters — a
// handle among them counts down the handover below instead of touching the state that
// is gone — and last the frame's operator delete, which builds the zombie's state in
// the memory it keeps.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <string>

#include "task_state.hpp"

namespace aio::detail {

// What a dying frame hands to the zombie that its memory becomes.
struct zombie_handover {
    void* frame = nullptr;
    std::uint32_t refs = 0;
    std::uintptr_t name = 0;
    bool named = false;
    std::uint8_t frame_offset = 0;
    std::exception_ptr error;

    static zombie_handover& current() noexcept {
        thread_local zombie_handover z;
        return z;
    }
};

// The zombie whose frame this thread is destroying, from its promise's destruction to
// the frame's deallocation.
inline thread_local task_state* zombie_being_destroyed = nullptr;

inline task_state::~task_state() {
    if (zombie_ && refs_ > 0) {  // handles outlive the frame: keep what they read
        zombie_handover& z = zombie_handover::current();
        z.frame = const_cast<char*>(reinterpret_cast<const char*>(this)) - frame_offset_;
        z.refs = refs_;
        z.name = name_;
        z.named = named_;
        z.frame_offset = frame_offset_;
        z.error = std::move(error_);
        error_.~exception_ptr();
        zombie_being_destroyed = this;
        return;
    }
    if (has_error()) error_.~exception_ptr();
    if (named_) delete name_string();
}

inline bool task_state::keep_as_zombie(void* frame, std::size_t size) noexcept {
    if (!zombie_being_destroyed) return false;
    zombie_handover& z = zombie_handover::current();
    if (z.frame != frame) return false;
    zombie_being_destroyed = nullptr;
    if (z.refs == 0) {  // the last handles were among the frame's parameters
        if (z.named) delete reinterpret_cast<std::string*>(z.name);
        z = {};
        return false;
    }
    auto* t = ::new (static_cast<char*>(frame) + z.frame_offset) task_state;
    t->set_error(std::move(z.error), task_status::cancelled);
    t->refs_ = z.refs;
    t->name_ = z.name;
    t->named_ = z.named;
    t->frame_offset_ = z.frame_offset;
    t->frame_size_ = size;
    t->spawned_ = t->started_ = t->retrieved_ = true;
    t->finished_ = 1;
    t->zombie_ = 1;
    z = {};
    return true;
}

}  // namespace aio::detail
