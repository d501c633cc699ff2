//! libsystemd's journal reader (sd-journal, the journal's own maintained
//! reader, the one `journalctl` uses), loaded at run time: the doctor
//! builds without libsystemd's headers and runs where it is missing (the
//! caller then reads through `journalctl`). All unsafe code for it is here.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::OnceLock;

/// The library's stable soname (libsystemd's ABI has kept it since 2015).
const LIBRARY: &CStr = c"libsystemd.so.0";

/// `SD_JOURNAL_LOCAL_ONLY`: this machine's journal, as `journalctl` opens
/// it without `--merge`.
const LOCAL_ONLY: c_int = 1;

type Handle = *mut c_void;

/// Declares the library's functions used here: a struct of pointers and
/// the loader that resolves each of them by its name.
macro_rules! functions {
    ($($name:ident: fn($($arg:ty),*) -> $ret:ty;)*) => {
        /// The functions resolved in the loaded library, which stays loaded
        /// for the life of the process.
        pub struct Library {
            $($name: unsafe extern "C" fn($($arg),*) -> $ret,)*
        }

        impl Library {
            /// # Safety
            /// `library` is a handle from `dlopen` that is never closed.
            unsafe fn resolve(library: *mut c_void) -> Result<Library, String> {
                Ok(Library {
                    $($name: {
                        let name = CString::new(stringify!($name)).expect("no NUL in a name");
                        // SAFETY: `library` is open; the symbol, when found,
                        // is the function of this signature (sd-journal(3)).
                        let symbol = unsafe { libc::dlsym(library, name.as_ptr()) };
                        if symbol.is_null() {
                            return Err(format!("libsystemd has no {}", stringify!($name)));
                        }
                        // SAFETY: as above, a function pointer of this type.
                        unsafe { std::mem::transmute::<*mut c_void, unsafe extern "C" fn($($arg),*) -> $ret>(symbol) }
                    },)*
                })
            }
        }
    };
}

functions! {
    sd_journal_open: fn(*mut Handle, c_int) -> c_int;
    sd_journal_open_directory: fn(*mut Handle, *const c_char, c_int) -> c_int;
    sd_journal_open_files: fn(*mut Handle, *const *const c_char, c_int) -> c_int;
    sd_journal_close: fn(Handle) -> ();
    sd_journal_set_data_threshold: fn(Handle, usize) -> c_int;
    sd_journal_add_match: fn(Handle, *const c_void, usize) -> c_int;
    sd_journal_add_disjunction: fn(Handle) -> c_int;
    sd_journal_seek_tail: fn(Handle) -> c_int;
    sd_journal_previous: fn(Handle) -> c_int;
    sd_journal_get_data: fn(Handle, *const c_char, *mut *const c_void, *mut usize) -> c_int;
    sd_journal_get_realtime_usec: fn(Handle, *mut u64) -> c_int;
}

/// The library, loaded once; the error says why it cannot be used.
pub fn library() -> Result<&'static Library, &'static str> {
    static LOADED: OnceLock<Result<Library, String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            // SAFETY: loading libsystemd runs no code of ours; the handle is
            // never closed, so the resolved pointers stay valid.
            let library =
                unsafe { libc::dlopen(LIBRARY.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
            if library.is_null() {
                return Err("libsystemd.so.0 is not installed".to_owned());
            }
            // SAFETY: `library` is open and never closed.
            unsafe { Library::resolve(library) }
        })
        .as_ref()
        .map_err(String::as_str)
}

/// sd-journal's result: a negative errno is the error.
fn checked(result: c_int) -> io::Result<c_int> {
    if result < 0 {
        Err(io::Error::from_raw_os_error(-result))
    } else {
        Ok(result)
    }
}

/// An open journal: a folder's or a file's (`--journal-dir`), or this
/// machine's.
pub struct Journal {
    library: &'static Library,
    handle: NonNull<c_void>,
}

impl Library {
    /// Opens `place` (a journal folder or one journal file) or, with none,
    /// the system's journal; fields are read whole (no size threshold).
    pub fn open(&'static self, place: Option<&Path>) -> io::Result<Journal> {
        let mut handle: Handle = std::ptr::null_mut();
        let path = place
            .map(|p| CString::new(p.as_os_str().as_bytes()))
            .transpose()?;
        // SAFETY: `handle` is written on success only; `path` outlives the
        // calls, and the file list is NULL-terminated.
        checked(unsafe {
            match (place, &path) {
                (Some(place), Some(path)) if place.is_file() => {
                    let files = [path.as_ptr(), std::ptr::null()];
                    (self.sd_journal_open_files)(&mut handle, files.as_ptr(), 0)
                }
                (_, Some(path)) => (self.sd_journal_open_directory)(&mut handle, path.as_ptr(), 0),
                (_, None) => (self.sd_journal_open)(&mut handle, LOCAL_ONLY),
            }
        })?;
        let handle = NonNull::new(handle).ok_or_else(|| io::Error::other("no journal opened"))?;
        let journal = Journal {
            library: self,
            handle,
        };
        // SAFETY: the handle is open (here and in every method below).
        checked(unsafe { (self.sd_journal_set_data_threshold)(journal.raw(), 0) })?;
        Ok(journal)
    }
}

impl Journal {
    fn raw(&self) -> Handle {
        self.handle.as_ptr()
    }

    /// Adds `FIELD=value` to the current group of matches (all must hold).
    pub fn add_match(&mut self, field_value: &[u8]) -> io::Result<()> {
        // SAFETY: the bytes are read during the call only (their length given).
        checked(unsafe {
            (self.library.sd_journal_add_match)(
                self.raw(),
                field_value.as_ptr().cast(),
                field_value.len(),
            )
        })
        .map(drop)
    }

    /// Starts another group of matches (either group may hold).
    pub fn add_disjunction(&mut self) -> io::Result<()> {
        checked(unsafe { (self.library.sd_journal_add_disjunction)(self.raw()) }).map(drop)
    }

    pub fn seek_tail(&mut self) -> io::Result<()> {
        checked(unsafe { (self.library.sd_journal_seek_tail)(self.raw()) }).map(drop)
    }

    /// Moves to the next older matching entry; `false` past the oldest.
    pub fn previous(&mut self) -> io::Result<bool> {
        checked(unsafe { (self.library.sd_journal_previous)(self.raw()) }).map(|moved| moved > 0)
    }

    /// The entry's `MESSAGE` bytes; `None` when it has none, or one too
    /// damaged to read (`journalctl` skips such entries too). The bytes
    /// borrow the journal mutably: they are valid only until its next call.
    pub fn message(&mut self) -> io::Result<Option<&[u8]>> {
        let mut data: *const c_void = std::ptr::null();
        let mut length = 0usize;
        // SAFETY: on success `data` points at `length` bytes that stay valid
        // until the next call on the journal, which the borrow rules out.
        let result = unsafe {
            (self.library.sd_journal_get_data)(
                self.raw(),
                c"MESSAGE".as_ptr(),
                &mut data,
                &mut length,
            )
        };
        match checked(result) {
            Ok(_) => {
                let field = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), length) };
                Ok(Some(field.strip_prefix(b"MESSAGE=").unwrap_or(field)))
            }
            Err(err) if matches!(err.raw_os_error(), Some(libc::ENOENT | libc::EBADMSG)) => {
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// The entry's wall-clock time in microseconds since the epoch.
    pub fn realtime_micros(&self) -> io::Result<u64> {
        let mut micros = 0u64;
        checked(unsafe { (self.library.sd_journal_get_realtime_usec)(self.raw(), &mut micros) })?;
        Ok(micros)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // SAFETY: opened by `open` and closed only here.
        unsafe { (self.library.sd_journal_close)(self.raw()) }
    }
}
