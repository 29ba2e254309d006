//! Values between D1 and PostgreSQL. Parameters go as text in the type the server inferred for
//! them (SQLite's loose typing: `5` binds to a TEXT column, `'5'` to a BIGINT one); results come
//! back in binary and are read by their column's type into D1's values.

use std::error::Error;

use bytes::{BufMut, BytesMut};
use runtime::sql::SqlValue;
use tokio_postgres::types::{Format, FromSql, IsNull, ToSql, Type, to_sql_checked};

type BoxError = Box<dyn Error + Sync + Send>;

/// A bound value, sent as text for the server to read in the parameter's type.
#[derive(Debug)]
pub struct Param<'a>(pub &'a SqlValue);

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match self.0 {
            SqlValue::Null => return Ok(IsNull::Yes),
            SqlValue::Integer(n) => {
                if *ty == Type::BOOL {
                    out.put_slice(if *n != 0 { b"t" } else { b"f" });
                } else {
                    out.put_slice(n.to_string().as_bytes());
                }
            }
            SqlValue::Real(x) => {
                if !x.is_finite() {
                    return Err("a number that is not finite cannot be stored".into());
                }
                out.put_slice(x.to_string().as_bytes());
            }
            SqlValue::Text(text) => {
                if text.contains('\0') {
                    return Err(
                        "text with a NUL character cannot be stored on PostgreSQL; bind it as an ArrayBuffer".into()
                    );
                }
                out.put_slice(text.as_bytes());
            }
            SqlValue::Blob(bytes) => {
                if *ty == Type::BYTEA {
                    out.put_slice(b"\\x");
                    for byte in bytes.iter() {
                        out.put_slice(format!("{byte:02x}").as_bytes());
                    }
                } else {
                    let text = std::str::from_utf8(bytes)
                        .map_err(|_| format!("an ArrayBuffer binds to a BLOB column, not to one of type {ty}"))?;
                    out.put_slice(text.as_bytes());
                }
            }
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

/// A column's value as the server sent it, undecoded.
pub struct Raw<'a>(pub Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Raw(Some(raw)))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Raw(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A column's binary value as D1's value, or why it has none.
pub fn decode(ty: &Type, raw: Option<&[u8]>) -> Result<SqlValue, String> {
    let Some(raw) = raw else {
        return Ok(SqlValue::Null);
    };
    let fixed = |width: usize| -> Result<&[u8], String> {
        (raw.len() == width).then_some(raw).ok_or_else(|| format!("a {ty} value of {} bytes", raw.len()))
    };
    Ok(match *ty {
        Type::BOOL => SqlValue::Integer(i64::from(fixed(1)?[0] != 0)),
        Type::INT2 => SqlValue::Integer(i64::from(i16::from_be_bytes(fixed(2)?.try_into().unwrap_or_default()))),
        Type::INT4 | Type::OID => {
            SqlValue::Integer(i64::from(i32::from_be_bytes(fixed(4)?.try_into().unwrap_or_default())))
        }
        Type::INT8 => SqlValue::Integer(i64::from_be_bytes(fixed(8)?.try_into().unwrap_or_default())),
        Type::FLOAT4 => SqlValue::Real(f64::from(f32::from_be_bytes(fixed(4)?.try_into().unwrap_or_default()))),
        Type::FLOAT8 => SqlValue::Real(f64::from_be_bytes(fixed(8)?.try_into().unwrap_or_default())),
        Type::NUMERIC => numeric(raw)?,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON => {
            SqlValue::Text(String::from_utf8(raw.to_vec()).map_err(|_| "text that is not UTF-8".to_owned())?)
        }
        Type::JSONB => match raw.split_first() {
            Some((1, text)) => {
                SqlValue::Text(String::from_utf8(text.to_vec()).map_err(|_| "text that is not UTF-8".to_owned())?)
            }
            _ => return Err("a jsonb value of an unknown version".to_owned()),
        },
        Type::BYTEA => SqlValue::Blob(bytes::Bytes::copy_from_slice(raw)),
        _ => return Err(format!("a value of type {ty}, which D1 has no value for; CAST it to TEXT")),
    })
}

/// PostgreSQL's binary NUMERIC: a whole number as an integer when it fits, else a real.
fn numeric(raw: &[u8]) -> Result<SqlValue, String> {
    let word = |at: usize| -> Result<i16, String> {
        raw.get(at..at + 2)
            .map(|bytes| i16::from_be_bytes([bytes[0], bytes[1]]))
            .ok_or_else(|| "a NUMERIC value cut short".to_owned())
    };
    let (count, weight, sign, scale) = (word(0)?, word(2)?, word(4)? as u16, word(6)?);
    if sign == 0xC000 {
        return Ok(SqlValue::Null);
    }
    let negative = sign == 0x4000;
    let digits: Vec<i16> = (0..count.max(0) as usize).map(|i| word(8 + 2 * i)).collect::<Result<_, _>>()?;
    let mut whole: i128 = 0;
    let mut exact = scale == 0;
    let mut real = 0.0f64;
    for (i, digit) in digits.iter().enumerate() {
        let power = i32::from(weight) - i as i32;
        real += f64::from(*digit) * 10000f64.powi(power);
        if power >= 0 && exact {
            match 10000i128.checked_pow(power as u32).and_then(|p| p.checked_mul(i128::from(*digit))) {
                Some(part) => whole = whole.saturating_add(part),
                None => exact = false,
            }
        } else if *digit != 0 {
            exact = false;
        }
    }
    if exact && let Ok(value) = i64::try_from(if negative { -whole } else { whole }) {
        return Ok(SqlValue::Integer(value));
    }
    Ok(SqlValue::Real(if negative { -real } else { real }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(count: i16, weight: i16, sign: u16, scale: i16, digits: &[i16]) -> Vec<u8> {
        let mut out = Vec::new();
        for word in [count, weight, sign as i16, scale].into_iter().chain(digits.iter().copied()) {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out
    }

    #[test]
    fn numerics_read_as_integers_when_whole_and_reals_otherwise() {
        // 3250 (a sum of BIGINTs), -123456789, 12.5 and 0.
        assert_eq!(numeric(&numeric_bytes(1, 0, 0, 0, &[3250])).unwrap(), SqlValue::Integer(3250));
        assert_eq!(numeric(&numeric_bytes(3, 2, 0x4000, 0, &[1, 2345, 6789])).unwrap(), SqlValue::Integer(-123456789));
        assert_eq!(numeric(&numeric_bytes(2, 0, 0, 1, &[12, 5000])).unwrap(), SqlValue::Real(12.5));
        assert_eq!(numeric(&numeric_bytes(0, 0, 0, 0, &[])).unwrap(), SqlValue::Integer(0));
    }

    #[test]
    fn columns_decode_by_type() {
        assert_eq!(decode(&Type::INT8, Some(&42i64.to_be_bytes())).unwrap(), SqlValue::Integer(42));
        assert_eq!(decode(&Type::BOOL, Some(&[1])).unwrap(), SqlValue::Integer(1));
        assert_eq!(decode(&Type::FLOAT8, Some(&1.5f64.to_be_bytes())).unwrap(), SqlValue::Real(1.5));
        assert_eq!(decode(&Type::TEXT, Some(b"hi")).unwrap(), SqlValue::Text("hi".into()));
        assert_eq!(decode(&Type::TEXT, None).unwrap(), SqlValue::Null);
        assert!(decode(&Type::TIMESTAMPTZ, Some(&[0; 8])).unwrap_err().contains("CAST it to TEXT"));
    }
}
