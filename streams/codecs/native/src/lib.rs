//! changefeed's Avro hot path: a reader and a writer per schema, interpreted in Rust.
//!
//! Python builds a *plan* from a parsed (fastavro) schema, once per schema id (`streams.codecs.plan`):
//! nested tuples such as `("record", ("id", "name"), (("long",), ("string",)))`. This module turns a
//! plan into a tree of nodes and walks it for every record. The values are exactly those of
//! fastavro (and of `streams.codecs.fastread`): the same Python types, the same dict field order,
//! logical types converted by fastavro's own functions, which the plan carries.
//!
//! Reader errors are Python's `EOFError` (the message ends early), `IndexError` (a union branch or
//! enum symbol out of range) and `ValueError` (a varint longer than 10 bytes, a string that is not
//! UTF-8): `AvroDecoder` turns each into `AvroBodyError`.
//!
//! The writer encodes only values of the exact Python types it knows (`None`, `bool`, `int`,
//! `float`, `str`, `bytes`, `dict`, `list`) with an unambiguous union branch; for anything else
//! `encode` returns `None` and the caller encodes the record with fastavro, so a value outside
//! that subset gets fastavro's bytes or fastavro's error, never a guess of ours.

use pyo3::exceptions::{PyEOFError, PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

// ---------------------------------------------------------------------------------------------
// Plans

fn tag_of<'py>(plan: &Bound<'py, PyAny>) -> PyResult<(Bound<'py, PyTuple>, String)> {
    let t = plan.downcast::<PyTuple>()?.clone();
    let tag: String = t.get_item(0)?.extract()?;
    Ok((t, tag))
}

/// A record's field names as interned strings (the dict keys of every record read).
fn interned(names: &Bound<'_, PyAny>) -> PyResult<Vec<Py<PyString>>> {
    let mut out = Vec::new();
    for name in names.try_iter()? {
        let name = name?.downcast_into::<PyString>()?;
        out.push(PyString::intern(name.py(), name.to_str()?).unbind());
    }
    Ok(out)
}

fn bad_plan(tag: &str) -> PyErr {
    PyValueError::new_err(format!("unknown plan node {tag:?}"))
}

// ---------------------------------------------------------------------------------------------
// Reading

enum RNode {
    Null,
    Boolean,
    Long,
    Float,
    Double,
    Bytes,
    Str,
    Enum(Vec<Py<PyString>>),
    Fixed(usize),
    Array(Box<RNode>),
    Map(Box<RNode>),
    Record(Vec<(Py<PyString>, RNode)>),
    Union(Vec<RNode>),
    Logical(Box<RNode>, PyObject, PyObject),
}

fn rnode(plan: &Bound<'_, PyAny>) -> PyResult<RNode> {
    let (t, tag) = tag_of(plan)?;
    Ok(match tag.as_str() {
        "null" => RNode::Null,
        "boolean" => RNode::Boolean,
        "int" | "long" => RNode::Long,
        "float" => RNode::Float,
        "double" => RNode::Double,
        "bytes" => RNode::Bytes,
        "string" => RNode::Str,
        "enum" => {
            let symbols = t.get_item(1)?;
            let mut out = Vec::new();
            for s in symbols.try_iter()? {
                out.push(s?.downcast_into::<PyString>()?.unbind());
            }
            RNode::Enum(out)
        }
        "fixed" => RNode::Fixed(t.get_item(1)?.extract()?),
        "array" => RNode::Array(Box::new(rnode(&t.get_item(1)?)?)),
        "map" => RNode::Map(Box::new(rnode(&t.get_item(1)?)?)),
        "record" => {
            let names = interned(&t.get_item(1)?)?;
            let mut fields = Vec::new();
            for (name, p) in names.into_iter().zip(t.get_item(2)?.try_iter()?) {
                fields.push((name, rnode(&p?)?));
            }
            RNode::Record(fields)
        }
        "union" => {
            let mut branches = Vec::new();
            for p in t.get_item(1)?.try_iter()? {
                branches.push(rnode(&p?)?);
            }
            RNode::Union(branches)
        }
        "logical" => RNode::Logical(
            Box::new(rnode(&t.get_item(1)?)?),
            t.get_item(2)?.unbind(),
            t.get_item(3)?.unbind(),
        ),
        other => return Err(bad_plan(other)),
    })
}

struct Cursor<'a> {
    data: &'a [u8],
    p: usize,
}

fn eof() -> PyErr {
    PyEOFError::new_err("Avro value runs past the end of the message")
}

impl Cursor<'_> {
    #[inline]
    fn byte(&mut self) -> PyResult<u8> {
        match self.data.get(self.p) {
            Some(b) => {
                self.p += 1;
                Ok(*b)
            }
            None => Err(eof()),
        }
    }

    /// A zig-zag varint, kept to 64 bits like fastavro's C reader; more than 10 bytes is an error.
    #[inline]
    fn long(&mut self) -> PyResult<i64> {
        let mut n: u64 = 0;
        for k in 0..10u32 {
            let b = u64::from(self.byte()?);
            if b < 128 {
                n |= b << (7 * k);
                return Ok(((n >> 1) as i64) ^ -((n & 1) as i64));
            }
            n |= (b & 127) << (7 * k);
        }
        Err(PyValueError::new_err("varint longer than 10 bytes"))
    }

    #[inline]
    fn take(&mut self, size: i64) -> PyResult<&[u8]> {
        if size < 0 {
            return Err(eof());
        }
        let end = self.p.checked_add(size as usize).ok_or_else(eof)?;
        if end > self.data.len() {
            return Err(eof());
        }
        let out = &self.data[self.p..end];
        self.p = end;
        Ok(out)
    }
}

/// A branch or symbol index as Python indexes a sequence: -1 is the last one.
fn index(i: i64, len: usize, what: &str) -> PyResult<usize> {
    let i = if i < 0 { i + len as i64 } else { i };
    if i < 0 || i as usize >= len {
        return Err(PyIndexError::new_err(format!("{what} index out of range")));
    }
    Ok(i as usize)
}

/// Avro's blocked arrays and maps: counts until 0; a negative count is followed by the block's
/// size in bytes.
fn blocks<'a>(
    c: &mut Cursor<'a>,
    mut each: impl FnMut(&mut Cursor<'a>) -> PyResult<()>,
) -> PyResult<()> {
    loop {
        let mut count = c.long()?;
        if count == 0 {
            return Ok(());
        }
        if count < 0 {
            count = count.wrapping_neg();
            c.long()?;
        }
        for _ in 0..count {
            each(c)?;
        }
    }
}

fn read<'py>(node: &RNode, py: Python<'py>, c: &mut Cursor<'_>) -> PyResult<Bound<'py, PyAny>> {
    Ok(match node {
        RNode::Null => py.None().into_bound(py),
        RNode::Boolean => PyBool::new(py, c.byte()? != 0).to_owned().into_any(),
        RNode::Long => c.long()?.into_pyobject(py)?.into_any(),
        RNode::Float => {
            let b = c.take(4)?;
            PyFloat::new(py, f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))).into_any()
        }
        RNode::Double => {
            let b = c.take(8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            PyFloat::new(py, f64::from_le_bytes(a)).into_any()
        }
        RNode::Bytes => {
            let n = c.long()?;
            PyBytes::new(py, c.take(n)?).into_any()
        }
        RNode::Str => {
            let n = c.long()?;
            let raw = c.take(n)?;
            let s = std::str::from_utf8(raw)
                .map_err(|e| PyValueError::new_err(format!("string is not UTF-8: {e}")))?;
            PyString::new(py, s).into_any()
        }
        RNode::Enum(symbols) => {
            let i = index(c.long()?, symbols.len(), "enum symbol")?;
            symbols[i].bind(py).clone().into_any()
        }
        RNode::Fixed(size) => PyBytes::new(py, c.take(*size as i64)?).into_any(),
        RNode::Array(item) => {
            let out = PyList::empty(py);
            blocks(c, |c| out.append(read(item, py, c)?))?;
            out.into_any()
        }
        RNode::Map(value) => {
            let out = PyDict::new(py);
            blocks(c, |c| {
                let key = read(&RNode::Str, py, c)?;
                out.set_item(key, read(value, py, c)?)
            })?;
            out.into_any()
        }
        RNode::Record(fields) => {
            let out = PyDict::new(py);
            for (name, f) in fields {
                out.set_item(name.bind(py), read(f, py, c)?)?;
            }
            out.into_any()
        }
        RNode::Union(branches) => {
            let i = index(c.long()?, branches.len(), "union branch")?;
            read(&branches[i], py, c)?
        }
        RNode::Logical(inner, convert, schema) => {
            let value = read(inner, py, c)?;
            convert
                .bind(py)
                .call1((value, schema.bind(py), py.None()))?
        }
    })
}

/// Reads one value of its schema: `reader(data, start)` → `(value, end)`, like a compiled
/// `streams.codecs.fastread` reader.
#[pyclass(frozen, module = "changefeed_avro")]
struct Reader {
    root: RNode,
}

#[pymethods]
impl Reader {
    #[new]
    fn new(plan: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Reader { root: rnode(plan)? })
    }

    fn __call__<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyBytes>,
        start: usize,
    ) -> PyResult<(Bound<'py, PyAny>, usize)> {
        let mut c = Cursor {
            data: data.as_bytes(),
            p: start,
        };
        let value = read(&self.root, py, &mut c)?;
        Ok((value, c.p))
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// The Python type a union branch takes; a union whose branches share one is not planned.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    None_,
    Bool,
    Int,
    Float,
    Str,
    Bytes,
    Dict,
    List,
}

enum WNode {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    Str,
    Enum(Vec<String>),
    Fixed(usize),
    Array(Box<WNode>),
    Map(Box<WNode>),
    /// Per field: its key, its node, and what to write when a record lacks it (None: fastavro's turn).
    Record(Vec<(Py<PyString>, WNode, Option<PyObject>)>),
    /// Branches with their Python type (None: opaque), and whether any is opaque.
    Union(Vec<(Option<Class>, WNode)>, bool),
    Logical(Box<WNode>, PyObject, PyObject),
}

fn class_of_node(node: &WNode) -> Option<Class> {
    Some(match node {
        WNode::Null => Class::None_,
        WNode::Boolean => Class::Bool,
        WNode::Int | WNode::Long => Class::Int,
        WNode::Float | WNode::Double => Class::Float,
        WNode::Str | WNode::Enum(_) => Class::Str,
        WNode::Bytes | WNode::Fixed(_) => Class::Bytes,
        WNode::Record(_) | WNode::Map(_) => Class::Dict,
        WNode::Array(_) => Class::List,
        WNode::Union(..) | WNode::Logical(..) => return None,
    })
}

fn wnode(plan: &Bound<'_, PyAny>) -> PyResult<WNode> {
    let (t, tag) = tag_of(plan)?;
    Ok(match tag.as_str() {
        "null" => WNode::Null,
        "boolean" => WNode::Boolean,
        "int" => WNode::Int,
        "long" => WNode::Long,
        "float" => WNode::Float,
        "double" => WNode::Double,
        "bytes" => WNode::Bytes,
        "string" => WNode::Str,
        "enum" => WNode::Enum(t.get_item(1)?.extract()?),
        "fixed" => WNode::Fixed(t.get_item(1)?.extract()?),
        "array" => WNode::Array(Box::new(wnode(&t.get_item(1)?)?)),
        "map" => WNode::Map(Box::new(wnode(&t.get_item(1)?)?)),
        "record" => {
            let names = interned(&t.get_item(1)?)?;
            let missing = t.get_item(3)?;
            let mut fields = Vec::new();
            for ((name, p), m) in names
                .into_iter()
                .zip(t.get_item(2)?.try_iter()?)
                .zip(missing.try_iter()?)
            {
                let m = m?.downcast_into::<PyTuple>()?;
                let m = if m.is_empty() {
                    None
                } else {
                    Some(m.get_item(0)?.unbind())
                };
                fields.push((name, wnode(&p?)?, m));
            }
            WNode::Record(fields)
        }
        "union" => {
            // A branch of no single Python type (a logical type, a nested union) is opaque: such
            // a union writes None itself and leaves every other value to fastavro, which picks
            // the branch by validating the value against each in turn.
            let mut branches: Vec<(Option<Class>, WNode)> = Vec::new();
            for p in t.get_item(1)?.try_iter()? {
                let node = wnode(&p?)?;
                let class = class_of_node(&node);
                if class.is_some() && branches.iter().any(|(c, _)| *c == class) {
                    return Err(PyValueError::new_err("union branches share a Python type"));
                }
                branches.push((class, node));
            }
            let opaque = branches.iter().any(|(c, _)| c.is_none());
            WNode::Union(branches, opaque)
        }
        "logical" => WNode::Logical(
            Box::new(wnode(&t.get_item(1)?)?),
            t.get_item(2)?.unbind(),
            t.get_item(3)?.unbind(),
        ),
        other => return Err(bad_plan(other)),
    })
}

#[inline]
fn put_long(buf: &mut Vec<u8>, v: i64) {
    let mut n = ((v << 1) ^ (v >> 63)) as u64;
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

fn class_of_value(v: &Bound<'_, PyAny>) -> Option<Class> {
    Some(if v.is_none() {
        Class::None_
    } else if v.is_exact_instance_of::<PyString>() {
        Class::Str
    } else if v.is_exact_instance_of::<PyInt>() {
        Class::Int
    } else if v.is_exact_instance_of::<PyDict>() {
        Class::Dict
    } else if v.is_exact_instance_of::<PyBool>() {
        Class::Bool
    } else if v.is_exact_instance_of::<PyFloat>() {
        Class::Float
    } else if v.is_exact_instance_of::<PyBytes>() {
        Class::Bytes
    } else if v.is_exact_instance_of::<PyList>() {
        Class::List
    } else {
        return None;
    })
}

fn put_str(buf: &mut Vec<u8>, v: &Bound<'_, PyAny>) -> bool {
    if !v.is_exact_instance_of::<PyString>() {
        return false;
    }
    // SAFETY of the cast: checked exactly above. A lone surrogate does not encode: fastavro's turn.
    match unsafe { v.downcast_unchecked::<PyString>() }.to_str() {
        Ok(s) => {
            put_long(buf, s.len() as i64);
            buf.extend_from_slice(s.as_bytes());
            true
        }
        Err(_) => false,
    }
}

/// fastavro's blocks: one block of every item (none when empty), then the 0 that ends them.
fn put_blocks<T>(
    buf: &mut Vec<u8>,
    len: usize,
    items: impl Iterator<Item = T>,
    mut one: impl FnMut(T, &mut Vec<u8>) -> PyResult<bool>,
) -> PyResult<bool> {
    if len > 0 {
        put_long(buf, len as i64);
        for x in items {
            if !one(x, buf)? {
                return Ok(false);
            }
        }
    }
    buf.push(0);
    Ok(true)
}

/// Ok(false): this value is not one the writer covers (the caller falls back to fastavro).
fn write(node: &WNode, v: &Bound<'_, PyAny>, buf: &mut Vec<u8>) -> PyResult<bool> {
    Ok(match node {
        WNode::Null => v.is_none(),
        WNode::Boolean => {
            if !v.is_exact_instance_of::<PyBool>() {
                return Ok(false);
            }
            buf.push(u8::from(v.is_truthy()?));
            true
        }
        WNode::Int | WNode::Long => {
            if !v.is_exact_instance_of::<PyInt>() {
                return Ok(false);
            }
            let Ok(n) = v.extract::<i64>() else {
                return Ok(false);
            };
            if matches!(node, WNode::Int) && i32::try_from(n).is_err() {
                return Ok(false);
            }
            put_long(buf, n);
            true
        }
        WNode::Float => {
            if !v.is_exact_instance_of::<PyFloat>() {
                return Ok(false);
            }
            let x: f64 = v.extract()?;
            let f = x as f32;
            if f.is_infinite() && x.is_finite() {
                return Ok(false);
            }
            buf.extend_from_slice(&f.to_le_bytes());
            true
        }
        WNode::Double => {
            if !v.is_exact_instance_of::<PyFloat>() {
                return Ok(false);
            }
            let x: f64 = v.extract()?;
            buf.extend_from_slice(&x.to_le_bytes());
            true
        }
        WNode::Bytes => {
            if !v.is_exact_instance_of::<PyBytes>() {
                return Ok(false);
            }
            let b = unsafe { v.downcast_unchecked::<PyBytes>() }.as_bytes();
            put_long(buf, b.len() as i64);
            buf.extend_from_slice(b);
            true
        }
        WNode::Str => put_str(buf, v),
        WNode::Enum(symbols) => {
            if !v.is_exact_instance_of::<PyString>() {
                return Ok(false);
            }
            let Ok(s) = unsafe { v.downcast_unchecked::<PyString>() }.to_str() else {
                return Ok(false);
            };
            match symbols.iter().position(|x| x == s) {
                Some(i) => {
                    put_long(buf, i as i64);
                    true
                }
                None => false,
            }
        }
        WNode::Fixed(size) => {
            if !v.is_exact_instance_of::<PyBytes>() {
                return Ok(false);
            }
            let b = unsafe { v.downcast_unchecked::<PyBytes>() }.as_bytes();
            if b.len() != *size {
                return Ok(false);
            }
            buf.extend_from_slice(b);
            true
        }
        WNode::Array(item) => {
            if !v.is_exact_instance_of::<PyList>() {
                return Ok(false);
            }
            let list = unsafe { v.downcast_unchecked::<PyList>() };
            put_blocks(buf, list.len(), list.iter(), |x, buf| write(item, &x, buf))?
        }
        WNode::Map(value) => {
            if !v.is_exact_instance_of::<PyDict>() {
                return Ok(false);
            }
            let dict = unsafe { v.downcast_unchecked::<PyDict>() };
            put_blocks(buf, dict.len(), dict.iter(), |(k, x), buf| {
                Ok(put_str(buf, &k) && write(value, &x, buf)?)
            })?
        }
        WNode::Record(fields) => {
            if !v.is_exact_instance_of::<PyDict>() {
                return Ok(false);
            }
            let dict = unsafe { v.downcast_unchecked::<PyDict>() };
            for (name, f, missing) in fields {
                let written = match dict.get_item(name.bind(v.py()))? {
                    Some(x) => write(f, &x, buf)?,
                    None => match missing {
                        Some(m) => write(f, m.bind(v.py()), buf)?,
                        None => false,
                    },
                };
                if !written {
                    return Ok(false);
                }
            }
            true
        }
        WNode::Union(branches, opaque) => {
            let Some(class) = class_of_value(v) else {
                return Ok(false);
            };
            if *opaque && class != Class::None_ {
                return Ok(false);
            }
            if class == Class::Dict
                && unsafe { v.downcast_unchecked::<PyDict>() }.contains("-type")?
            {
                return Ok(false); // fastavro picks the branch by that name
            }
            match branches.iter().position(|(c, _)| *c == Some(class)) {
                Some(i) => {
                    put_long(buf, i as i64);
                    write(&branches[i].1, v, buf)?
                }
                None => false,
            }
        }
        WNode::Logical(inner, prepare, schema) => {
            let prepared = prepare.bind(v.py()).call1((v, schema.bind(v.py())))?;
            write(inner, &prepared, buf)?
        }
    })
}

/// Writes records of one schema: `writer.encode(record)` → the header given at construction
/// followed by the Avro body, or None when the record holds a value the writer does not cover.
#[pyclass(frozen, module = "changefeed_avro")]
struct Writer {
    root: WNode,
    header: Vec<u8>,
}

#[pymethods]
impl Writer {
    #[new]
    fn new(plan: &Bound<'_, PyAny>, header: &[u8]) -> PyResult<Self> {
        Ok(Writer {
            root: wnode(plan)?,
            header: header.to_vec(),
        })
    }

    fn encode<'py>(&self, record: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&self.header);
        if write(&self.root, record, &mut buf)? {
            Ok(Some(PyBytes::new(record.py(), &buf)))
        } else {
            Ok(None)
        }
    }
}

#[pymodule]
fn changefeed_avro(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Reader>()?;
    m.add_class::<Writer>()?;
    Ok(())
}
