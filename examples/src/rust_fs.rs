// rust_fs [DIR] [--no-symlink]: a Rust program (std::fs over WASI preview1)
// that creates, writes, renames, hard-links, truncates and symbolically
// links files inside its writable preopen DIR (default /work), checking
// every result. Exits 0 when all went as POSIX says; panics (exit 101)
// otherwise. With --no-symlink it expects symbolic link creation to be
// refused (a writable host directory: see runner/host_fs.ts).
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::wasi::io::AsRawFd;

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    // std's own wrapper is unstable in this Rust (wasi_ext), the import is not.
    #[link_name = "path_symlink"]
    fn wasi_path_symlink(old: *const u8, old_len: usize, fd: i32, new: *const u8, new_len: usize) -> u16;
}

fn symlink(dir: &File, target: &str, name: &str) -> u16 {
    unsafe { wasi_path_symlink(target.as_ptr(), target.len(), dir.as_raw_fd(), name.as_ptr(), name.len()) }
}

fn read(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {}", path, e))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let root = args.get(1).filter(|a| !a.starts_with("--")).cloned().unwrap_or("/work".into());
    let no_symlink = args.iter().any(|a| a == "--no-symlink");
    let p = |name: &str| format!("{}/{}", root, name);

    // Create and write, then read back.
    fs::create_dir_all(p("rust/nested")).unwrap();
    let mut f = File::create(p("rust/a.txt")).unwrap();
    f.write_all(b"hello from rust\n").unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(read(&p("rust/a.txt")), "hello from rust\n");
    // create_new refuses an existing file.
    let again = OpenOptions::new().write(true).create_new(true).open(p("rust/a.txt"));
    assert_eq!(again.unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);

    // Append, seek, truncate.
    let mut f = OpenOptions::new().append(true).open(p("rust/a.txt")).unwrap();
    f.write_all(b"more\n").unwrap();
    drop(f);
    assert_eq!(fs::metadata(p("rust/a.txt")).unwrap().len(), 21);
    let mut f = OpenOptions::new().read(true).write(true).open(p("rust/a.txt")).unwrap();
    f.set_len(5).unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    let mut text = String::new();
    f.read_to_string(&mut text).unwrap();
    assert_eq!(text, "hello");
    f.set_len(8).unwrap();
    assert_eq!(fs::metadata(p("rust/a.txt")).unwrap().len(), 8);
    drop(f);
    File::create(p("rust/a.txt")).unwrap().write_all(b"truncated").unwrap();
    assert_eq!(read(&p("rust/a.txt")), "truncated");

    // Rename: a file, over another file, and a directory.
    fs::write(p("rust/b.txt"), "b").unwrap();
    fs::rename(p("rust/b.txt"), p("rust/nested/b2.txt")).unwrap();
    assert!(fs::metadata(p("rust/b.txt")).is_err());
    fs::write(p("rust/c.txt"), "c").unwrap();
    fs::rename(p("rust/c.txt"), p("rust/nested/b2.txt")).unwrap();
    assert_eq!(read(&p("rust/nested/b2.txt")), "c");
    fs::rename(p("rust/nested"), p("rust/moved")).unwrap();
    assert_eq!(read(&p("rust/moved/b2.txt")), "c");

    // Hard links share their bytes and count.
    fs::hard_link(p("rust/a.txt"), p("rust/hard.txt")).unwrap();
    fs::write(p("rust/hard.txt"), "through the link").unwrap();
    assert_eq!(read(&p("rust/a.txt")), "through the link");
    assert_eq!(fs::hard_link(p("rust/a.txt"), p("rust/hard.txt")).unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
    fs::remove_file(p("rust/hard.txt")).unwrap();
    assert_eq!(read(&p("rust/a.txt")), "through the link");

    // Symbolic links.
    let dir = File::open(p("rust")).unwrap();
    if no_symlink {
        assert_ne!(symlink(&dir, "a.txt", "sym"), 0);
    } else {
        assert_eq!(symlink(&dir, "a.txt", "sym"), 0);
        assert_eq!(symlink(&dir, "moved", "dirsym"), 0);
        assert_eq!(symlink(&dir, "nowhere", "dangling"), 0);
        assert_eq!(symlink(&dir, "/etc/passwd", "absolute"), 0);
        assert_eq!(symlink(&dir, "a.txt", "sym"), 20); // EEXIST
        assert_eq!(fs::read_link(p("rust/sym")).unwrap().to_str(), Some("a.txt"));
        assert!(fs::symlink_metadata(p("rust/sym")).unwrap().file_type().is_symlink());
        assert!(fs::metadata(p("rust/sym")).unwrap().is_file());
        assert_eq!(read(&p("rust/sym")), "through the link");
        assert_eq!(read(&p("rust/dirsym/b2.txt")), "c");
        assert!(fs::metadata(p("rust/dangling")).is_err());
        assert!(fs::read(p("rust/absolute")).is_err()); // never leaves the directory
        fs::write(p("rust/sym"), "written via the link").unwrap();
        assert_eq!(read(&p("rust/a.txt")), "written via the link");
        fs::rename(p("rust/sym"), p("rust/sym2")).unwrap();
        assert!(fs::symlink_metadata(p("rust/sym2")).unwrap().file_type().is_symlink());
        fs::remove_file(p("rust/sym2")).unwrap();
        assert_eq!(read(&p("rust/a.txt")), "written via the link");
        for name in ["dirsym", "dangling", "absolute"] {
            fs::remove_file(p(&format!("rust/{}", name))).unwrap();
        }
    }

    // Listing, then removal of everything made.
    let mut names: Vec<String> = fs::read_dir(p("rust")).unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, vec!["a.txt", "moved"]);
    assert!(fs::remove_dir(p("rust/moved")).is_err()); // not empty
    fs::remove_dir_all(p("rust")).unwrap();
    assert!(fs::metadata(p("rust")).is_err());
    println!("rust_fs: ok");
}
