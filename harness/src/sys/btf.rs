//! The kernel's BTF (`/sys/kernel/btf/vmlinux`), read whole in one go and
//! walked in place: an index of where each type id starts and the few
//! lookups the drop monitor needs (a struct by name, its members, an enum's
//! values, a function prototype's parameters).
//!
//! Why not a general BTF library: parsing every one of vmlinux's ~150k
//! types into maps cost 180–210 ms per process (and, from a buffered file,
//! 126k `lseek`s); the monitor reads seven member offsets, one enum and one
//! prototype. The format is `include/uapi/linux/btf.h`.

use anyhow::{anyhow, bail, Context, Result};

pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xeb9f;

/// `BTF_KIND_*` this reader distinguishes.
pub mod kind {
    pub const INT: u8 = 1;
    pub const PTR: u8 = 2;
    pub const ARRAY: u8 = 3;
    pub const STRUCT: u8 = 4;
    pub const UNION: u8 = 5;
    pub const ENUM: u8 = 6;
    pub const TYPEDEF: u8 = 8;
    pub const VOLATILE: u8 = 9;
    pub const CONST: u8 = 10;
    pub const RESTRICT: u8 = 11;
    pub const FUNC_PROTO: u8 = 13;
    pub const VAR: u8 = 14;
    pub const DATASEC: u8 = 15;
    pub const DECL_TAG: u8 = 17;
    pub const TYPE_TAG: u8 = 18;
    pub const ENUM64: u8 = 19;
}

/// One type's fixed part (`struct btf_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeHdr {
    pub name_off: u32,
    pub kind: u8,
    pub kind_flag: bool,
    pub vlen: u16,
    /// `size` or `type`, by kind.
    pub size_or_type: u32,
    /// Where the kind's trailing data starts, in the type section.
    data: usize,
}

/// A struct or union member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub name_off: u32,
    pub ty: u32,
    pub bit_offset: u32,
}

/// A parsed BTF blob: the bytes and where each type id starts.
pub struct Btf {
    data: Vec<u8>,
    /// Start of the type section and of the string section in `data`.
    types: usize,
    strs: usize,
    strs_len: usize,
    /// Offset in the type section of type id `i` (id 0 is void).
    at: Vec<u32>,
    /// Names looked up together in one pass ([`Btf::index_names`]).
    named: std::collections::BTreeMap<String, Vec<u32>>,
}

impl Btf {
    /// The running kernel's BTF.
    pub fn vmlinux() -> Result<Btf> {
        let bytes = std::fs::read(VMLINUX).with_context(|| format!("reading {VMLINUX}"))?;
        Btf::parse(bytes).with_context(|| format!("parsing {VMLINUX}"))
    }

    pub fn parse(data: Vec<u8>) -> Result<Btf> {
        let u16_at = |o: usize| -> Result<u16> {
            Ok(u16::from_ne_bytes(data.get(o..o + 2).ok_or_else(|| anyhow!("truncated header"))?.try_into()?))
        };
        let u32_at = |o: usize| -> Result<u32> {
            Ok(u32::from_ne_bytes(data.get(o..o + 4).ok_or_else(|| anyhow!("truncated header"))?.try_into()?))
        };
        if u16_at(0)? != MAGIC {
            bail!("not BTF (magic {:#06x}), or of the other byte order", u16_at(0)?);
        }
        let hdr_len = u32_at(4)? as usize;
        let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
        let (str_off, str_len) = (u32_at(16)? as usize, u32_at(20)? as usize);
        let types = hdr_len + type_off;
        let strs = hdr_len + str_off;
        if types + type_len > data.len() || strs + str_len > data.len() {
            bail!("sections past the end of the data");
        }
        let mut b = Btf { data, types, strs, strs_len: str_len, at: vec![0], named: Default::default() };
        let mut o = 0usize;
        while o < type_len {
            if o + 12 > type_len {
                bail!("truncated type at {o}");
            }
            b.at.push(o as u32);
            let h = b.hdr_at(o);
            o = h.data + b.trailer_len(&h)?;
        }
        if o != type_len {
            bail!("type section overruns its length");
        }
        Ok(b)
    }

    fn word(&self, o: usize) -> u32 {
        let o = self.types + o;
        u32::from_ne_bytes([self.data[o], self.data[o + 1], self.data[o + 2], self.data[o + 3]])
    }

    fn hdr_at(&self, o: usize) -> TypeHdr {
        let info = self.word(o + 4);
        TypeHdr {
            name_off: self.word(o),
            kind: ((info >> 24) & 0x1f) as u8,
            kind_flag: info >> 31 == 1,
            vlen: (info & 0xffff) as u16,
            size_or_type: self.word(o + 8),
            data: o + 12,
        }
    }

    /// Bytes after `struct btf_type` for its kind.
    fn trailer_len(&self, h: &TypeHdr) -> Result<usize> {
        let n = h.vlen as usize;
        Ok(match h.kind {
            kind::INT | kind::VAR | kind::DECL_TAG => 4,
            kind::ARRAY => 12,
            kind::STRUCT | kind::UNION | kind::DATASEC => 12 * n,
            kind::ENUM | kind::FUNC_PROTO => 8 * n,
            kind::ENUM64 => 12 * n,
            // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG
            0 | 2 | 7..=12 | 16 | 18 => 0,
            k => bail!("unknown BTF kind {k}"),
        })
    }

    /// The number of types (ids run 1..=count).
    pub fn count(&self) -> u32 {
        self.at.len() as u32 - 1
    }

    pub fn hdr(&self, id: u32) -> Option<TypeHdr> {
        let o = *self.at.get(id as usize).filter(|_| id != 0)? as usize;
        Some(self.hdr_at(o))
    }

    /// The string at `off` in the string section ("" when out of range).
    pub fn str_at(&self, off: u32) -> &str {
        let s = &self.data[self.strs..self.strs + self.strs_len];
        let Some(rest) = s.get(off as usize..) else { return "" };
        let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).unwrap_or("")
    }

    fn name_is(&self, off: u32, name: &[u8]) -> bool {
        let start = self.strs + off as usize;
        let end = start + name.len();
        end < self.strs + self.strs_len && &self.data[start..end] == name && self.data[end] == 0
    }

    /// Ids of the types named `name`, in id order.
    pub fn ids_named(&self, name: &str) -> Vec<u32> {
        if let Some(ids) = self.named.get(name) {
            return ids.clone();
        }
        let name = name.as_bytes();
        (1..=self.count())
            .filter(|&id| {
                let o = self.at[id as usize] as usize;
                self.name_is(self.word(o), name)
            })
            .collect()
    }

    /// Looks `names` up in one pass over the types, so that
    /// [`Btf::ids_named`] answers them at once (each full pass is ~150k types).
    pub fn index_names(&mut self, names: &[&str]) {
        let mut first = [false; 256];
        for n in names {
            if let Some(&b) = n.as_bytes().first() {
                first[b as usize] = true;
            }
        }
        let mut found: std::collections::BTreeMap<String, Vec<u32>> =
            names.iter().map(|n| (n.to_string(), Vec::new())).collect();
        for id in 1..=self.count() {
            let off = self.word(self.at[id as usize] as usize);
            let Some(&b) = self.data.get(self.strs + off as usize) else { continue };
            if !first[b as usize] {
                continue;
            }
            for n in names {
                if self.name_is(off, n.as_bytes()) {
                    found.get_mut(*n).expect("every name has its list").push(id);
                }
            }
        }
        self.named.extend(found);
    }

    /// Members of a struct or union.
    pub fn members(&self, h: &TypeHdr) -> Vec<Member> {
        if !matches!(h.kind, kind::STRUCT | kind::UNION) {
            return vec![];
        }
        (0..h.vlen as usize)
            .map(|i| {
                let o = h.data + 12 * i;
                let off = self.word(o + 8);
                Member {
                    name_off: self.word(o),
                    ty: self.word(o + 4),
                    bit_offset: if h.kind_flag { off & 0xff_ffff } else { off },
                }
            })
            .collect()
    }

    /// An enum's (name, value) pairs (`BTF_KIND_ENUM`; values as u32).
    pub fn enum_values(&self, h: &TypeHdr) -> Vec<(&str, u32)> {
        if h.kind != kind::ENUM {
            return vec![];
        }
        (0..h.vlen as usize)
            .map(|i| {
                let o = h.data + 8 * i;
                (self.str_at(self.word(o)), self.word(o + 4))
            })
            .collect()
    }

    /// How many parameters a function prototype has.
    pub fn params(&self, h: &TypeHdr) -> Option<usize> {
        (h.kind == kind::FUNC_PROTO).then_some(h.vlen as usize)
    }

    /// The type a pointer, typedef or qualifier refers to.
    pub fn target(&self, h: &TypeHdr) -> Option<TypeHdr> {
        match h.kind {
            kind::PTR | kind::TYPEDEF | kind::VOLATILE | kind::CONST | kind::RESTRICT | kind::TYPE_TAG => {
                self.hdr(h.size_or_type)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A blob with `int`, `struct s { int a; struct { int b; }; }` and
    /// `enum e { X = 7 }`.
    fn tiny() -> Vec<u8> {
        let strs = b"\0int\0s\0a\0b\0e\0X\0";
        let w = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_ne_bytes());
        let info = |k: u32, vlen: u32| k << 24 | vlen;
        let mut t = Vec::new();
        // 1: int
        w(&mut t, 1);
        w(&mut t, info(1, 0));
        w(&mut t, 4);
        w(&mut t, 32);
        // 2: anonymous struct { int b; }
        w(&mut t, 0);
        w(&mut t, info(4, 1));
        w(&mut t, 4);
        for x in [9, 1, 0] {
            w(&mut t, x);
        }
        // 3: struct s { int a; <2> at 32 bits }
        w(&mut t, 5);
        w(&mut t, info(4, 2));
        w(&mut t, 8);
        for x in [7, 1, 0, 0, 2, 32] {
            w(&mut t, x);
        }
        // 4: enum e { X = 7 }
        w(&mut t, 11);
        w(&mut t, info(6, 1));
        w(&mut t, 4);
        for x in [13, 7] {
            w(&mut t, x);
        }
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC.to_ne_bytes());
        b.extend_from_slice(&[1, 0]);
        for x in [24, 0, t.len() as u32, t.len() as u32, strs.len() as u32] {
            w(&mut b, x);
        }
        b.extend(t);
        b.extend_from_slice(strs);
        b
    }

    #[test]
    fn a_tiny_blob_is_walked() {
        let b = Btf::parse(tiny()).unwrap();
        assert_eq!(b.count(), 4);
        assert_eq!(b.ids_named("s"), vec![3]);
        assert_eq!(b.ids_named("in"), Vec::<u32>::new());
        let s = b.hdr(3).unwrap();
        let m = b.members(&s);
        assert_eq!(m.len(), 2);
        assert_eq!((b.str_at(m[0].name_off), m[1].bit_offset, b.str_at(m[1].name_off)), ("a", 32, ""));
        let inner = b.members(&b.hdr(m[1].ty).unwrap());
        assert_eq!(b.str_at(inner[0].name_off), "b");
        assert_eq!(b.enum_values(&b.hdr(4).unwrap()), vec![("X", 7)]);
    }

    #[test]
    fn truncated_or_foreign_blobs_are_refused() {
        let t = tiny();
        assert!(Btf::parse(t[..t.len() - 20].to_vec()).is_err());
        assert!(Btf::parse(vec![0; 32]).is_err());
        let mut bad = t.clone();
        bad[24 + 4 + 3] = 30; // an unknown kind
        assert!(Btf::parse(bad).is_err());
    }

    #[test]
    fn this_kernels_btf_parses_whole() {
        let Ok(b) = Btf::vmlinux() else { return };
        assert!(b.count() > 1000);
        let slow = b.ids_named("sk_buff");
        assert!(!slow.is_empty());
        let mut b = b;
        b.index_names(&["sk_buff", "net"]);
        assert_eq!(b.ids_named("sk_buff"), slow);
    }
}
