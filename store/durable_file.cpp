#include "store/durable_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>

namespace rill {

namespace fs = std::filesystem;

namespace {

Env* Or(Env* env) { return env ? env : Env::Default(); }

Status Fsync(const std::string& path, int flags, Env* env) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::OK();
    return Status::IOError(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  }
  Status s = Or(env)->Sync(fd, path);
  ::close(fd);
  return s;
}

std::string Parent(const std::string& path) {
  std::string parent = fs::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

}  // namespace

Status SyncFile(const std::string& path, Env* env) { return Fsync(path, O_RDONLY, env); }

Status SyncDirectory(const std::string& dir, Env* env) { return Fsync(dir, O_RDONLY | O_DIRECTORY, env); }

Status SyncTree(const std::string& root, Env* env) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_symlink(ec)) continue;
    if (it->is_directory(ec)) {
      RILL_RETURN_IF_ERROR(SyncDirectory(it->path().string(), env));
    } else if (it->is_regular_file(ec)) {
      RILL_RETURN_IF_ERROR(SyncFile(it->path().string(), env));
    }
  }
  if (ec) return Status::IOError(fmt::format("cannot list {}: {}", root, ec.message()));
  RILL_RETURN_IF_ERROR(SyncDirectory(root, env));
  return SyncDirectory(Parent(fs::absolute(root).string()), env);
}

mode_t CurrentUmask() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Umask:", 0) != 0) continue;
    try {
      return static_cast<mode_t>(std::stoul(line.substr(6), nullptr, 8)) & 0777;
    } catch (const std::exception&) {
      break;
    }
  }
  return 022;  // kernels before 4.7 do not say; the common default
}

Status CopyModes(const std::string& from, const std::string& to) {
  std::error_code ec;
  auto apply = [&](const fs::path& source, const fs::path& copy) -> Status {
    struct stat st {};
    if (::lstat(source.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) return Status::OK();  // nothing to follow
    if (::chmod(copy.c_str(), st.st_mode & 07777) != 0 && errno != ENOENT)
      return Status::IOError(fmt::format("cannot set the mode of {}: {}", copy.string(), std::strerror(errno)));
    return Status::OK();
  };
  for (auto it = fs::recursive_directory_iterator(to, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_symlink(ec)) continue;
    RILL_RETURN_IF_ERROR(apply(fs::path(from) / fs::relative(it->path(), to, ec), it->path()));
  }
  if (ec) return Status::IOError(fmt::format("cannot list {}: {}", to, ec.message()));
  return apply(from, to);
}

Result<AtomicFileWriter> AtomicFileWriter::Create(const std::string& target, mode_t mode, Env* env) {
  std::string temp = target + ".tmp.XXXXXX";
  int fd = ::mkostemp(temp.data(), O_CLOEXEC);  // O_CREAT|O_EXCL: never an existing file or symlink
  if (fd < 0) return Status::IOError(fmt::format("cannot create a file beside {}: {}", target, std::strerror(errno)));
  (void)::fchmod(fd, mode & 0666 & ~CurrentUmask());  // mkostemp makes 0600
  std::FILE* f = ::fdopen(fd, "wb");
  if (f == nullptr) {
    int err = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    return Status::IOError(fmt::format("cannot open {}: {}", temp, std::strerror(err)));
  }
  return AtomicFileWriter(target, std::move(temp), f, Or(env));
}

AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : target_(std::move(other.target_)),
      temp_(std::move(other.temp_)),
      file_(std::exchange(other.file_, nullptr)),
      env_(other.env_) {}

AtomicFileWriter::~AtomicFileWriter() { Abandon(); }

void AtomicFileWriter::Abandon() {
  if (file_ == nullptr) return;
  std::fclose(file_);
  file_ = nullptr;
  ::unlink(temp_.c_str());
}

Status AtomicFileWriter::Commit() {
  if (file_ == nullptr) return Status::IOError(fmt::format("{}: already closed", target_));
  int err = 0;
  Status synced;
  if (std::fflush(file_) != 0) err = errno;
  else synced = env_->Sync(::fileno(file_), temp_);
  if (std::fclose(file_) != 0 && err == 0) err = errno;
  file_ = nullptr;
  if (err != 0 || !synced.ok()) {
    ::unlink(temp_.c_str());
    if (!synced.ok()) return Status::IOError(fmt::format("cannot write {}: {}", target_, synced.message()));
    return Status::IOError(fmt::format("cannot write {}: {}", target_, std::strerror(err)));
  }
  if (Status renamed = env_->Rename(temp_, target_); !renamed.ok()) {
    ::unlink(temp_.c_str());
    return renamed;
  }
  return SyncDirectory(Parent(target_), env_);
}

}  // namespace rill
