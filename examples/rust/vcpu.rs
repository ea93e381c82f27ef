// SPDX-License-Identifier: MIT
//! A small safe wrapper over libvcpu's C API (the `sys` bindings bindgen
//! generates from the installed headers): handles that close themselves
//! (Drop), errors as `Result` with libvcpu's detail string, and exit
//! handlers as a trait.  Only std: no crate from outside Debian.

use crate::sys;
use std::ffi::CStr;
use std::fmt;
use std::marker::PhantomData;
use std::os::raw::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

/// A failed call: the negative errno libvcpu returned and its detail.
#[derive(Debug)]
pub struct Error {
    pub errno: i32,
    pub detail: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "errno {}: {}", self.errno, self.detail)
    }
}

fn detail(s: *const c_char) -> String {
    if s.is_null() {
        return String::new();
    }
    // libvcpu's detail strings are NUL-terminated and live in the handle.
    unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
}

fn check(r: c_int, what: impl FnOnce() -> String) -> Result<(), Error> {
    if r < 0 {
        Err(Error { errno: -r, detail: what() })
    } else {
        Ok(())
    }
}

/// A hypervisor driver handle, real or the mock's (libvcpu-mock).
pub struct Hv {
    raw: *mut sys::vcpu_hv,
    mock: *mut sys::vcpu_mock,
}

impl Hv {
    /// The first hypervisor device the host has (`/dev/kvm`, ...).
    pub fn open() -> Result<Hv, Error> {
        let mut raw = ptr::null_mut();
        let r = unsafe { sys::vcpu_hv_open(sys::vcpu_backend_VCPU_BACKEND_AUTO, &mut raw) };
        check(r, || "vcpu_hv_open".to_string())?;
        Ok(Hv { raw, mock: ptr::null_mut() })
    }

    /// The mock KVM driver for guests of @arch (`sys::vcpu_arch_*`).
    pub fn open_mock(arch: sys::vcpu_arch) -> Result<Hv, Error> {
        let mut cfg: sys::vcpu_mock_config = unsafe { std::mem::zeroed() };
        cfg.arch = arch;
        let (mut mock, mut raw) = (ptr::null_mut(), ptr::null_mut());
        let r = unsafe {
            sys::vcpu_mock_open(sys::vcpu_backend_VCPU_BACKEND_KVM, &cfg, &mut mock, &mut raw)
        };
        check(r, || "vcpu_mock_open".to_string())?;
        Ok(Hv { raw, mock })
    }

    pub fn is_mock(&self) -> bool {
        !self.mock.is_null()
    }

    pub fn arch(&self) -> sys::vcpu_arch {
        unsafe { sys::vcpu_hv_arch(self.raw) }
    }

    /// The mock's scripted guest for vCPU @id.
    pub fn script(&self, id: u32, steps: &[sys::vcpu_mock_step]) -> Result<(), Error> {
        let r = unsafe { sys::vcpu_mock_script(self.mock, id, steps.as_ptr(), steps.len() as _) };
        check(r, || "vcpu_mock_script: no mock, or a bad step".to_string())
    }

    /// Write-backs the mock's scripted guest found wrong (0 on a real driver).
    pub fn mock_failures(&self) -> u32 {
        if self.mock.is_null() {
            return 0;
        }
        unsafe { sys::vcpu_mock_failures(self.mock, ptr::null_mut()) }
    }

    /// A VM with the default configuration; it owns the guest RAM given to it.
    pub fn create_vm(&self) -> Result<Vm<'_>, Error> {
        let mut raw = ptr::null_mut();
        let r = unsafe { sys::vcpu_vm_create(self.raw, ptr::null(), &mut raw) };
        check(r, || detail(unsafe { sys::vcpu_hv_last_error(self.raw) }))?;
        Ok(Vm { raw, ram: Vec::new(), _hv: PhantomData })
    }
}

impl Drop for Hv {
    fn drop(&mut self) {
        unsafe {
            sys::vcpu_hv_close(self.raw);
            if !self.mock.is_null() {
                sys::vcpu_mock_destroy(&mut self.mock);
            }
        }
    }
}

/// Page-aligned, zeroed host memory for guest RAM.
pub struct GuestMem {
    ptr: *mut u8,
    layout: std::alloc::Layout,
}

impl GuestMem {
    pub fn new(len: usize) -> GuestMem {
        let layout = std::alloc::Layout::from_size_align(len, 4096).expect("guest RAM size");
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!ptr.is_null(), "out of memory for guest RAM");
        GuestMem { ptr, layout }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.layout.size()) }
    }
}

impl Drop for GuestMem {
    fn drop(&mut self) {
        unsafe { std::alloc::dealloc(self.ptr, self.layout) }
    }
}

/// A VM; its vCPUs borrow it, so they are destroyed first.
pub struct Vm<'hv> {
    raw: *mut sys::vcpu_vm,
    ram: Vec<GuestMem>, // freed only after the VM is destroyed (Drop)
    _hv: PhantomData<&'hv Hv>,
}

impl<'hv> Vm<'hv> {
    /// Map @mem at guest-physical @gpa; the VM keeps it.
    pub fn map(&mut self, gpa: u64, mem: GuestMem) -> Result<(), Error> {
        let r = unsafe {
            sys::vcpu_vm_map(self.raw, gpa, mem.ptr as *mut c_void, mem.layout.size() as u64, 0)
        };
        check(r, || detail(unsafe { sys::vcpu_vm_last_error(self.raw) }))?;
        self.ram.push(mem);
        Ok(())
    }

    pub fn create_vcpu(&self, id: u32) -> Result<Vcpu<'_>, Error> {
        let mut raw = ptr::null_mut();
        let r = unsafe { sys::vcpu_create(self.raw, id, 0, &mut raw) };
        check(r, || detail(unsafe { sys::vcpu_vm_last_error(self.raw) }))?;
        Ok(Vcpu { raw, _vm: PhantomData })
    }
}

impl Drop for Vm<'_> {
    fn drop(&mut self) {
        unsafe { sys::vcpu_vm_destroy(&mut self.raw) };
    }
}

/// What a handler tells the run loop.
pub enum Exit {
    /// Resume the guest.
    Continue,
    /// Stop vcpu_run(), which returns this (positive) code.
    Stop(i32),
    /// Fail vcpu_run() with this errno.
    Fail(i32),
}

/// Why vcpu_run() returned without an error.
#[derive(Debug, PartialEq)]
pub enum Stopped {
    /// A handler stopped it with this code.
    Handler(i32),
    /// vcpu_kick().
    Kicked,
    /// vcpu_vm_stop_all().
    VmStopped,
}

/// The VMM's exit handlers; an exit whose method is not overridden goes to
/// `other`, whose default fails the run (ENOSYS).
pub trait Handlers {
    fn mmio(&mut self, _io: &mut sys::vcpu_io) -> Option<Exit> {
        None
    }
    fn pio(&mut self, _io: &mut sys::vcpu_io) -> Option<Exit> {
        None
    }
    fn other(&mut self, _exit: &sys::vcpu_exit) -> Exit {
        Exit::Fail(38) // ENOSYS
    }
}

fn to_c(e: Exit) -> c_int {
    match e {
        Exit::Continue => 0,
        Exit::Stop(code) => code.max(1),
        Exit::Fail(errno) => -errno.abs().max(1),
    }
}

type Ctx<'a> = &'a mut dyn Handlers;

// The trampolines libvcpu calls: ctx is a &mut Ctx; a panic must not unwind into C.
unsafe extern "C" fn io_trampoline(
    ctx: *mut c_void,
    io: *mut sys::vcpu_io,
    pio: bool,
) -> c_int {
    let h: &mut Ctx = &mut *(ctx as *mut Ctx);
    let io = &mut *io;
    catch_unwind(AssertUnwindSafe(|| {
        let r = if pio { h.pio(io) } else { h.mmio(io) };
        to_c(r.unwrap_or(Exit::Fail(38)))
    }))
    .unwrap_or(-5) // EIO
}

unsafe extern "C" fn on_mmio(ctx: *mut c_void, _cpu: *mut sys::vcpu, io: *mut sys::vcpu_io) -> c_int {
    io_trampoline(ctx, io, false)
}

unsafe extern "C" fn on_pio(ctx: *mut c_void, _cpu: *mut sys::vcpu, io: *mut sys::vcpu_io) -> c_int {
    io_trampoline(ctx, io, true)
}

unsafe extern "C" fn on_other(
    ctx: *mut c_void,
    _cpu: *mut sys::vcpu,
    exit: *const sys::vcpu_exit,
) -> c_int {
    let h: &mut Ctx = &mut *(ctx as *mut Ctx);
    let exit = &*exit;
    catch_unwind(AssertUnwindSafe(|| to_c(h.other(exit)))).unwrap_or(-5)
}

/// A vCPU; it borrows its VM.
pub struct Vcpu<'vm> {
    raw: *mut sys::vcpu,
    _vm: PhantomData<&'vm Vm<'vm>>,
}

impl Vcpu<'_> {
    fn error(&self, r: c_int) -> Error {
        Error { errno: -r, detail: detail(unsafe { sys::vcpu_last_error(self.raw) }) }
    }

    pub fn get_regs(&self, regs: &mut [sys::vcpu_reg]) -> Result<(), Error> {
        let r = unsafe { sys::vcpu_get_regs(self.raw, regs.as_mut_ptr(), regs.len() as u32) };
        if r < 0 { Err(self.error(r)) } else { Ok(()) }
    }

    pub fn set_regs(&self, regs: &[sys::vcpu_reg]) -> Result<(), Error> {
        let r = unsafe { sys::vcpu_set_regs(self.raw, regs.as_ptr(), regs.len() as u32) };
        if r < 0 { Err(self.error(r)) } else { Ok(()) }
    }

    /// Run until a handler stops it, a kick, a VM-wide stop or an error.
    pub fn run(&mut self, handlers: &mut dyn Handlers) -> Result<Stopped, Error> {
        let mut h: sys::vcpu_handlers = unsafe { std::mem::zeroed() };
        h.mmio = Some(on_mmio);
        h.pio = Some(on_pio);
        h.other = Some(on_other);
        let mut ctx: Ctx = handlers;
        let r = unsafe { sys::vcpu_run(self.raw, &h, &mut ctx as *mut Ctx as *mut c_void) };
        match r {
            r if r > 0 => Ok(Stopped::Handler(r)),
            -4 => Ok(Stopped::Kicked),      // EINTR
            -125 => Ok(Stopped::VmStopped), // ECANCELED
            r => Err(self.error(r)),
        }
    }
}

impl Drop for Vcpu<'_> {
    fn drop(&mut self) {
        unsafe { sys::vcpu_destroy(&mut self.raw) };
    }
}
