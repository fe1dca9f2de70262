// RoomLock: a phase-fair "two rooms" lock. Any number of threads may be inside the same room at
// once, never threads of both rooms. HnswVectorStore uses room 0 for searches and room 1 for
// inserting threads: hnswlib allows concurrent searches and concurrent insertions, but not a
// search during an insertion.
//
// Fairness: a thread arriving while the other room is occupied or has waiters waits; when a room
// empties, every thread then waiting for the other room is admitted together. So neither side
// starves, and a search waits at most for the insertions already inside (each one vector).
//
// Thread-safety: all members are thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace modulo::index::hnsw {

class RoomLock {
 public:
  enum Room : int { kSearch = 0, kWrite = 1 };

  void Enter(Room r) {
    std::unique_lock lock(mu_);
    const int o = 1 - r;
    if (inside_[o] == 0 && waiting_[o] == 0) {
      ++inside_[r];
      return;
    }
    ++waiting_[r];
    const std::uint64_t gen = generation_[r];
    cv_.wait(lock, [&] { return generation_[r] != gen || (inside_[o] == 0 && waiting_[o] == 0); });
    if (generation_[r] != gen) --admitted_[r];
    --waiting_[r];
    ++inside_[r];
  }

  void Leave(Room r) {
    std::lock_guard lock(mu_);
    const int o = 1 - r;
    // The room is empty once nobody is inside and nobody admitted is still on the way in.
    if (--inside_[r] > 0 || admitted_[r] > 0) return;
    // Admit everyone waiting for the other room (or, if none, for this one) as one group.
    const int next = waiting_[o] > 0 ? o : waiting_[r] > 0 ? r : -1;
    if (next < 0) return;
    ++generation_[next];
    admitted_[next] = waiting_[next];
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int inside_[2] = {0, 0};
  int waiting_[2] = {0, 0};
  int admitted_[2] = {0, 0};  // waiting threads admitted by the last generation, not yet inside
  std::uint64_t generation_[2] = {0, 0};
};

// RAII: inside `room` of `lock` for the guard's lifetime.
class InRoom {
 public:
  InRoom(RoomLock& lock, RoomLock::Room room) : lock_(lock), room_(room) { lock_.Enter(room_); }
  ~InRoom() { lock_.Leave(room_); }
  InRoom(const InRoom&) = delete;
  InRoom& operator=(const InRoom&) = delete;

 private:
  RoomLock& lock_;
  RoomLock::Room room_;
};

}  // namespace modulo::index::hnsw
