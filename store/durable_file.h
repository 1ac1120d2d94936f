// Files rill writes beside the log that must survive a power loss once the
// command that wrote them has said so: exports, backups, registered
// projection files. The pattern is one: write a private temporary beside
// the target, fsync it, rename it over the target, fsync the directory.
// Each fsync and rename goes through an Env (nullptr: Env::Default()), so a
// test can fail any one of them.
//
// Errors: IOError only (the message names the path and errno); nothing here
// returns another code. Thread safety: the free functions may be called from
// any thread; an AtomicFileWriter is used by one thread at a time.
#pragma once

#include <sys/types.h>

#include <cstdio>
#include <string>

#include "store/env.h"
#include "store/status.h"

namespace rill {

// fsync of one file (a missing file is fine: nothing to make durable).
// IOError: it cannot be opened (other than ENOENT) or the fsync fails.
Status SyncFile(const std::string& path, Env* env = nullptr);
// fsync of a directory, which makes the names in it (a rename, a new
// file) durable. A missing directory is OK too, as for SyncFile.
Status SyncDirectory(const std::string& dir, Env* env = nullptr);
// SyncFile of every file and SyncDirectory of every directory under `root`
// (root included), then of root's parent: a copied tree, durable. Symlinks
// are not followed. Stops at the first failure (IOError, also for a tree
// that cannot be listed).
Status SyncTree(const std::string& root, Env* env = nullptr);

// The process's umask, read from /proc/self/status: umask(2) reads it only
// by setting it, a race with any other thread creating a file meanwhile.
// 022 where /proc does not say.
mode_t CurrentUmask();

// Gives every file and directory under `to` (and `to` itself) the mode of
// its namesake under `from`: a copy is exactly as private as what it copies
// (a store made under umask 077 backs up as 0600/0700, not 0644/0755).
// Symlinks are skipped, as is a copy without a namesake under `from` (it
// keeps its mode). IOError: a chmod fails, or `to` cannot be listed.
Status CopyModes(const std::string& from, const std::string& to);

// A file written whole or not at all. The temporary is created beside the
// target with a unique name, O_EXCL (so no file, and no symlink planted at a
// predictable name, is ever written through) and the mode `mode` less the
// umask: a copy of a private file passes that file's mode, so the copy is
// no more open than it. Destroyed without Commit, it removes the temporary.
class AtomicFileWriter {
 public:
  // IOError if the temporary cannot be created (the target's directory is
  // missing or not writable, EMFILE, ENOSPC).
  static Result<AtomicFileWriter> Create(const std::string& target, mode_t mode = 0666, Env* env = nullptr);
  AtomicFileWriter(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&&) = delete;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  ~AtomicFileWriter();

  // The temporary, for writing. A failed fwrite is the caller's to notice
  // (ferror); Commit reports only what its own flush and fsync see.
  std::FILE* file() const { return file_; }
  // Flushes, fsyncs and closes the temporary, renames it over the target
  // and fsyncs the directory. Call once. IOError: the flush, fsync or
  // rename failed (the temporary removed, the target untouched); the
  // directory's fsync failed (the target already replaced, the new name
  // maybe not durable); called a second time ("already closed").
  Status Commit();

 private:
  AtomicFileWriter(std::string target, std::string temp, std::FILE* file, Env* env)
      : target_(std::move(target)), temp_(std::move(temp)), file_(file), env_(env) {}
  void Abandon();
  std::string target_, temp_;
  std::FILE* file_ = nullptr;
  Env* env_;
};

}  // namespace rill
