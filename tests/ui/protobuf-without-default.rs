use eventwire::prelude::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
#[event(format = "protobuf")]
struct OrderCreated {
    id: u64,
}

// A hand-written message without `Default` (the derive would provide it).
impl prost::Message for OrderCreated {
    fn encode_raw(&self, _: &mut impl prost::bytes::BufMut) {}
    fn merge_field(
        &mut self,
        _: u32,
        _: prost::encoding::WireType,
        _: &mut impl prost::bytes::Buf,
        _: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        Ok(())
    }
    fn encoded_len(&self) -> usize {
        0
    }
    fn clear(&mut self) {}
}

fn main() {}
