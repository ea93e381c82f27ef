// SPDX-License-Identifier: MIT
//! rustvmm: a VMM in Rust on libvcpu's C API, through bindgen's bindings
//! and the safe wrapper in vcpu.rs.  It runs the README tour's guest (a
//! real-mode x86_64 guest that prints "Hi" on COM1 and halts) on /dev/kvm,
//! or, with --mock or where there is no usable x86_64 hypervisor, on
//! libvcpu-mock's scripted guest, which checks every write-back.
//!
//! Built by build.sh (bindgen, then rustc; see README.md there).

#[allow(non_camel_case_types, non_upper_case_globals, non_snake_case, dead_code)]
#[allow(clippy::all)]
mod sys {
    include!(env!("VCPU_BINDINGS"));
}
mod vcpu;

use std::io::Write;
use vcpu::{Exit, GuestMem, Handlers, Hv, Stopped};

const COM1: u64 = 0x3f8;
const CODE: u64 = 0x1000;

static GUEST: [u8; 13] = [
    0xba, 0xf8, 0x03, // mov dx, 0x3f8
    0xb0, b'H', 0xee, // mov al, 'H'; out dx, al
    0xb0, b'i', 0xee, // mov al, 'i'; out dx, al
    0xb0, b'\n', 0xee, // mov al, '\n'; out dx, al
    0xf4, // hlt
];

/// The VMM's devices: a UART's data register on COM1.
struct Machine {
    out: Vec<u8>,
}

impl Handlers for Machine {
    fn pio(&mut self, io: &mut sys::vcpu_io) -> Option<Exit> {
        if io.addr == COM1 && io.is_write != 0 {
            self.out.push(io.data[0]);
        }
        Some(Exit::Continue)
    }

    fn other(&mut self, exit: &sys::vcpu_exit) -> Exit {
        if exit.kind == sys::vcpu_exit_kind_VCPU_EXIT_HALT {
            Exit::Stop(1)
        } else {
            Exit::Fail(5) // EIO
        }
    }
}

fn mock_script() -> Vec<sys::vcpu_mock_step> {
    let mut steps = Vec::new();
    for c in b"Hi\n" {
        let mut s: sys::vcpu_mock_step = unsafe { std::mem::zeroed() };
        s.op = sys::vcpu_mock_op_VCPU_MOCK_PIO_OUT;
        s.addr = COM1;
        s.len = 1;
        s.count = 1;
        s.value = u64::from(*c);
        steps.push(s);
    }
    let mut hlt: sys::vcpu_mock_step = unsafe { std::mem::zeroed() };
    hlt.op = sys::vcpu_mock_op_VCPU_MOCK_HLT;
    steps.push(hlt);
    steps
}

fn reg(id: u64) -> sys::vcpu_reg {
    let mut r: sys::vcpu_reg = unsafe { std::mem::zeroed() };
    r.id = id;
    r
}

fn run(mock: bool) -> Result<Vec<u8>, vcpu::Error> {
    let x86 = sys::vcpu_arch_VCPU_ARCH_X86_64;
    let hv = match (mock, Hv::open()) {
        (false, Ok(hv)) if hv.arch() == x86 => hv,
        _ => Hv::open_mock(x86)?,
    };
    eprintln!(
        "rustvmm: {}",
        if hv.is_mock() { "the mock's scripted guest" } else { "the real guest" }
    );
    let mut vm = hv.create_vm()?;
    let mut ram = GuestMem::new(0x10000);
    ram.as_mut_slice()[CODE as usize..CODE as usize + GUEST.len()].copy_from_slice(&GUEST);
    vm.map(0, ram)?;
    let mut cpu = vm.create_vcpu(0)?;
    if hv.is_mock() {
        hv.script(0, &mock_script())?;
    }
    // x86 resets with CS based at 0xffff0000: base it at 0, and RIP at the code.
    let cs = 0x180 + u64::from(sys::vcpu_x86_seg_VCPU_X86_CS); // VCPU_REG_X86_SEG(VCPU_X86_CS)
    let mut regs = [reg(cs), reg(u64::from(sys::vcpu_x86_reg_VCPU_REG_X86_RIP))];
    cpu.get_regs(&mut regs[..1])?;
    // Writing a union field is safe; the read above filled seg.
    regs[0].__bindgen_anon_1.seg.base = 0;
    regs[0].__bindgen_anon_1.seg.selector = 0;
    regs[1].__bindgen_anon_1.value = CODE;
    cpu.set_regs(&regs)?;

    let mut machine = Machine { out: Vec::new() };
    let stopped = cpu.run(&mut machine)?;
    if stopped != Stopped::Handler(1) {
        eprintln!("rustvmm: vcpu_run() ended with {:?}", stopped);
    }
    if hv.mock_failures() != 0 {
        return Err(vcpu::Error { errno: 71, detail: "the mock saw a wrong write-back".into() });
    }
    Ok(machine.out)
}

fn main() {
    let mock = std::env::args().nth(1).as_deref() == Some("--mock");
    match run(mock) {
        Ok(out) => {
            std::io::stdout().write_all(&out).expect("stdout");
        }
        Err(e) => {
            eprintln!("rustvmm: {}", e);
            std::process::exit(1);
        }
    }
}
