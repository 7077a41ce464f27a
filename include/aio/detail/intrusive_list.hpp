#pragma once
// The one intrusive list aio uses: circular and doubly linked through a list_links
// member of the element. The list itself is one pointer (its oldest element; the
// newest is head->prev), an element two; linking allocates nothing and unlinking an
// element needs no search. An element knows whether it is linked, so an owner that
// dies can unlink itself.

namespace aio::detail {

template <class T>
struct list_links {
    T* prev = nullptr;
    T* next = nullptr;
};

template <class T, list_links<T> T::*Links>
class intrusive_list {
public:
    intrusive_list() noexcept = default;
    intrusive_list(const intrusive_list&) = delete;
    intrusive_list& operator=(const intrusive_list&) = delete;
    intrusive_list(intrusive_list&& other) noexcept : head_(other.head_) { other.head_ = nullptr; }
    intrusive_list& operator=(intrusive_list&& other) noexcept {
        head_ = other.head_;
        other.head_ = nullptr;
        return *this;
    }

    static bool linked(const T& x) noexcept { return (x.*Links).prev != nullptr; }

    bool empty() const noexcept { return head_ == nullptr; }
    T* front() const noexcept { return head_; }
    T* back() const noexcept { return head_ ? (head_->*Links).prev : nullptr; }
    // The element after `x`, or null after the last.
    T* next(const T* x) const noexcept {
        T* n = (x->*Links).next;
        return n == head_ ? nullptr : n;
    }

    void push_back(T* x) noexcept {
        list_links<T>& l = x->*Links;
        if (!head_) {
            l.prev = l.next = x;
            head_ = x;
            return;
        }
        T* tail = (head_->*Links).prev;
        l.prev = tail;
        l.next = head_;
        (tail->*Links).next = x;
        (head_->*Links).prev = x;
    }

    // `x` must be linked in this list.
    void unlink(T* x) noexcept {
        list_links<T>& l = x->*Links;
        if (l.next == x) {
            head_ = nullptr;
        } else {
            (l.prev->*Links).next = l.next;
            (l.next->*Links).prev = l.prev;
            if (head_ == x) head_ = l.next;
        }
        l.prev = l.next = nullptr;
    }

    // `x`, not linked, takes the place of `old`, which must be linked in this list.
    void replace(T* old, T* x) noexcept {
        list_links<T>& o = old->*Links;
        list_links<T>& l = x->*Links;
        if (o.next == old) {
            l.prev = l.next = x;
        } else {
            l.prev = o.prev;
            l.next = o.next;
            (l.prev->*Links).next = x;
            (l.next->*Links).prev = x;
        }
        if (head_ == old) head_ = x;
        o.prev = o.next = nullptr;
    }
    T* pop_front() noexcept {
        T* x = head_;
        if (x) unlink(x);
        return x;
    }

private:
    T* head_ = nullptr;
};

}  // namespace aio::detail
