# One item per image id: the metadata document (DESIGN "Metadata").
resource "aws_dynamodb_table" "meta" {
  #checkov:skip=CKV_AWS_119:Encrypted at rest with the AWS-managed key (aws/dynamodb); the items hold no secrets (dimensions, hashes, URLs).
  name         = "${var.name}-meta"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "id"
  attribute {
    name = "id"
    type = "S"
  }
  point_in_time_recovery {
    enabled = true
  }
  server_side_encryption {
    enabled = true
  }
  deletion_protection_enabled = false
}
